"""``imgtrans`` command line: ``convert`` a batch, list ``models``, show ``info`` on a weight file,
``import``/``remove`` your own models, ``calibrate`` the backends, ``summary`` of a sharded run,
``gui`` (also: no command).

One module per job: :mod:`~imgtrans.cli.parser` (the arguments), :mod:`~imgtrans.cli.convert`
(the convert flow, with :mod:`~imgtrans.cli.checks`, :mod:`~imgtrans.cli.loading` and
:mod:`~imgtrans.cli.shards`; its console output is :mod:`imgtrans.cli_report`, which the lite
command line shares), :mod:`~imgtrans.cli.models` (the model commands). What a command needs
beyond the standard library is imported when it runs: listing and help never import torch, so they
answer at once.
"""

from __future__ import annotations

import argparse
import logging
import sys

from imgtrans.cli.common import EXIT_CANCELLED, EXIT_FAILURES, EXIT_OK, EXIT_USAGE, err
from imgtrans.cli.convert import cmd_convert
from imgtrans.cli.models import cmd_calibrate, cmd_import, cmd_info, cmd_models, cmd_remove
from imgtrans.cli.parser import build_parser
from imgtrans.cli.shards import cmd_summary


def cmd_gui(args: argparse.Namespace) -> int:
    from imgtrans.gui.app import main as gui_main

    return gui_main([str(p) for p in args.paths])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # the command's own usage, not the top-level one, for a typo in its options
            own = parser.commands.get(args.command) if args.command else None
            (own or parser).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # usage errors (exit 2) and --help/--version (exit 0) as return codes
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        return cmd_gui(argparse.Namespace(paths=[]))
    handler = {"convert": cmd_convert, "models": cmd_models, "info": cmd_info, "gui": cmd_gui,
               "calibrate": cmd_calibrate, "summary": cmd_summary, "import": cmd_import,
               "remove": cmd_remove}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("imgtrans: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # last resort: one line, details with -v
        logging.getLogger("imgtrans").debug("unexpected error", exc_info=True)
        first = str(exc).splitlines()[0] if str(exc) else ""
        err(f"unexpected {type(exc).__name__}: {first} (run with -v for details)")
        if args.verbose:
            raise
        return EXIT_FAILURES


__all__ = ["build_parser", "main"]
