"""What every ``imgtrans`` subcommand shares: exit codes, the error line, the usage-error exception."""

from __future__ import annotations

import sys

from imgtrans.cli_args import printable

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130

EXIT_CODES_TEXT = """exit codes:
  0    everything converted (or already there)
  1    some file failed, the batch stopped early (disk full), or a shard was killed or never ran
  2    usage error (nothing was converted)
  130  cancelled (Ctrl-C); re-run the same command to resume
"""


class UsageError(Exception):
    """A problem with the command line or its setting, found before anything is converted: the
    command prints ``str(e)`` as its error line and exits with :data:`EXIT_USAGE`."""


def err(message: str) -> None:
    print(f"imgtrans: error: {printable(message)}", file=sys.stderr)
