#!/usr/bin/env bash
# Installs RPyC Explorer into ./.venv (with the Debian packages Qt needs) so that
# .venv/bin/rpyc-explorer starts the application.
set -euo pipefail
# shellcheck source=scripts/_common.sh
source "$(dirname "$0")/_common.sh"
install_debian_packages system-packages.txt
create_venv ""
echo "Installed. Start the application with: $venv/bin/rpyc-explorer"
