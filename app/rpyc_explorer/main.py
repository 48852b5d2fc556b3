"""Entry point of the application: `rpyc-explorer` and `python -m rpyc_explorer`.

It creates the QApplication, applies the theme, runs a qasync event loop, and shows
the main window until the window has closed every session. `--smoke` opens the
window offscreen with temporary settings, connects "This computer", lists `/` and
exits 0 when all of that worked.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    from rpyc_explorer.views.about_dialog import app_version

    parser = argparse.ArgumentParser(
        prog="rpyc-explorer",
        description="Explore Python processes on your machines over SSH.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {app_version()}"
    )
    parser.add_argument(
        "--smoke", action="store_true",
        help="open the window offscreen with temporary settings, connect "
             "'This computer', list '/', close and exit (0 on success)",
    )  # fmt: skip
    parser.add_argument(
        "--color-scheme", choices=("light", "dark"),
        help="use this colour scheme instead of the desktop's",
    )  # fmt: skip
    parser.add_argument(
        "--log-level", default="WARNING",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="level of the log lines printed to stderr (default WARNING); the log "
             "pane shows its own levels",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the application; return the process exit status."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["--askpass"]:
        # ssh's SSH_ASKPASS in a frozen bundle, which has no Python to run
        # askpass_helper.py with (see session/askpass.py); no Qt is loaded.
        from rpyc_explorer import askpass_helper

        return askpass_helper.main(["rpyc-explorer", *arguments[1:]])
    args = parse_args(argv)
    if args.smoke:
        from rpyc_explorer.app import run_smoke

        return run_smoke(args.color_scheme, args.log_level)
    from rpyc_explorer.app import run_app

    return run_app(args.color_scheme, args.log_level)


if __name__ == "__main__":
    sys.exit(main())
