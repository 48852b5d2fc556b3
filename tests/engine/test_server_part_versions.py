"""The server part and the remote bootstrap must run on CPython 3.8 (checked by vermin)."""

from __future__ import annotations

import re
import subprocess
import sys

from rpyc_engine.deploy.bootstrap import bootstrap_source
from rpyc_engine.deploy.bundle import PACKAGE_ROOT, server_part_files

MINIMUM = (3, 8)
# vermin has no __main__ module; this runs its console script's entry point.
VERMIN_MAIN = "import sys, vermin; sys.exit(vermin.main())"


def _vermin_minimum(paths: list) -> tuple:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            VERMIN_MAIN,
            "--no-tips",
            "--violations",
            "-t=3.8-",
            *paths,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    found = re.search(r"Minimum required versions: ([\d.]+)", completed.stdout)
    assert found, completed.stdout
    return tuple(int(part) for part in found.group(1).split("."))


def test_server_part_needs_at_most_38():
    """Every module of the server part runs on Python 3.8."""
    paths = [str(PACKAGE_ROOT / relative) for relative in server_part_files()]
    assert _vermin_minimum(paths) <= MINIMUM


def test_bootstrap_needs_at_most_38(tmp_path):
    """The bootstrap program given to python -c runs on Python 3.8."""
    script = tmp_path / "bootstrap.py"
    script.write_text(bootstrap_source())
    assert _vermin_minimum([str(script)]) <= MINIMUM


def test_server_part_leaves_out_client_modules():
    """The bundle has the remote deploy modules but no asyncio or client deploy code."""
    files = server_part_files()
    assert "deploy/mux.py" in files
    assert "deploy/remote.py" in files
    assert "deploy/deployed_server.py" not in files
    assert "deploy/__init__.py" not in files
    assert "aio.py" not in files
    assert "drivers/asyncio.py" not in files
