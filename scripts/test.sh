#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs the Debian packages the tests
# need (sshd, Xvfb, D-Bus, gnome-keyring), the project with its test extra into
# ./.venv, then runs pytest inside a private D-Bus session with an unlocked
# gnome-keyring. Extra arguments go to pytest; --quick skips the bundle build.
set -euo pipefail
# shellcheck source=scripts/_common.sh
source "$(dirname "$0")/_common.sh"
cd "$repo_root"

pytest_args=()
for arg in "$@"; do
    if [ "$arg" = "--quick" ]; then
        pytest_args+=(-m "not bundle")
    else
        pytest_args+=("$arg")
    fi
done

install_debian_packages system-packages.txt test-packages.txt
create_venv "test,bundle"

export LANG=C.UTF-8
export QT_QPA_PLATFORM=offscreen
export PYTHONFAULTHANDLER=1
# A throwaway keyring: its own data directory (so no login.keyring of the user, or of
# an earlier run with another password, is touched) and a password that lives only as
# long as this D-Bus session.
keyring_home=$(mktemp -d)
trap 'rm -rf "$keyring_home"' EXIT
keyring_password="rpyc-explorer-tests-$$"
status=0
dbus-run-session -- bash -c '
    printf %s "$1" | XDG_DATA_HOME="$2" gnome-keyring-daemon --unlock --components=secrets >/dev/null
    shift 2
    exec "$@"
' _ "$keyring_password" "$keyring_home" "$venv/bin/python" -m pytest -p no:cacheprovider -ra "${pytest_args[@]}" || status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests" >&2
    exit 1
fi
exit "$status"
