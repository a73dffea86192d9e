# Shared start of the bundle checks (check_bundle.sh, check_bundle_lite.sh); source it with
#   CHECK=<name in messages> EXE_NAME=<executable> DEFAULT_BUNDLE=<dist/...>  and the bundle folder
#   (or nothing) as its one argument.
# Sets REPO, BUNDLE, EXE, SYSPY, WORK (a temporary folder with home/ and cwd/, removed on exit, after
# the caller's `on_exit` function when one is defined), clean_env (run a command with an empty
# environment: no venv, no PYTHONPATH, PATH=/usr/bin:/bin, a fresh HOME), fail and pass; and cds
# into $WORK/cwd so that nothing can be found relative to the repository.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE="$(cd "${1:-$REPO/$DEFAULT_BUNDLE}" && pwd)"
EXE="$BUNDLE/$EXE_NAME"
SYSPY=/usr/bin/python3

fail() { echo "$CHECK: FAIL: $*" >&2; exit 1; }
pass() { echo "$CHECK: ok: $*"; }

[ -x "$EXE" ] || fail "$EXE not found; run 'make ${CHECK%-check}'"
[ -x "$SYSPY" ] || fail "$SYSPY (stdlib only) is needed to read image sizes"

WORK="$(mktemp -d)"
_common_cleanup() {
    if declare -F on_exit >/dev/null; then on_exit || true; fi
    rm -rf "$WORK"
}
trap _common_cleanup EXIT
mkdir -p "$WORK/home" "$WORK/cwd"
cd "$WORK/cwd"
clean_env=(env -i "HOME=$WORK/home" "PATH=/usr/bin:/bin" "LANG=C.UTF-8")
