# Shared by bootstrap.sh and test.sh: install Debian packages and the virtualenv.
# shellcheck shell=bash

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="${RPYC_EXPLORER_VENV:-$repo_root/.venv}"

read_package_list() {
    grep -v '^#' "$1" | tr '\n' ' '
}

install_debian_packages() {
    # Installs the named package lists with apt-get when it exists; as a normal user it
    # goes through sudo, and it only prints what is missing when neither works.
    local packages=""
    for list in "$@"; do
        packages="$packages $(read_package_list "$repo_root/scripts/$list")"
    done
    local missing=""
    for package in $packages; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
            missing="$missing $package"
        fi
    done
    [ -n "$missing" ] || return 0
    packages="$missing"
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "note: apt-get not found; install these packages yourself: $packages" >&2
        return 0
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo"
        else
            echo "note: not root and no sudo; install these packages yourself: $packages" >&2
            return 0
        fi
    fi
    echo "Installing Debian packages:$packages"
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $packages >/dev/null
}

create_venv() {
    # Creates the project's virtualenv and installs the project into it in editable mode
    # with the given extras.
    local extras="$1"
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install -q --upgrade pip
    # pip rejects an empty "[]", so the brackets appear only when extras are given.
    "$venv/bin/python" -m pip install -q -e "$repo_root${extras:+[$extras]}"
}
