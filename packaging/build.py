"""Build the one-folder bundle of RPyC Explorer: `python packaging/build.py`.

PyInstaller runs `packaging/rpyc-explorer.spec` into `dist/rpyc-explorer/`. Then the
desktop entry, the icons and `install.sh` are copied into the bundle's `share/`
layout. With `--smoke` the bundle's smoke mode runs once, and with `--record` three
times, writing size and start time to the "Bundle" block of docs/benchmarks.md.
`--icons` only renders the PNG icons from resources/rpyc-explorer.svg; it needs
PySide6's QtSvg, which the bundle itself leaves out.

This folder is not a Python package on purpose: a `packaging/__init__.py` would
shadow the `packaging` library that pip and PyInstaller import.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "packaging" / "rpyc-explorer.spec"
RESOURCES = REPO / "resources"
ICON_SVG = RESOURCES / "rpyc-explorer.svg"
DESKTOP_FILE = RESOURCES / "rpyc-explorer.desktop"
ICON_THEME_DIR = RESOURCES / "icons" / "hicolor"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
APP_ID = "rpyc-explorer"
BENCHMARKS = REPO / "docs" / "benchmarks.md"
BLOCK_BEGIN = "<!-- BEGIN bundle -->"
BLOCK_END = "<!-- END bundle -->"
SMOKE_TIMEOUT = 180


def render_icons(svg: Path = ICON_SVG, theme_dir: Path = ICON_THEME_DIR) -> list[Path]:
    """Render `svg` to `<theme_dir>/<N>x<N>/apps/rpyc-explorer.png` for every size."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - keeps Qt alive
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"cannot render {svg}: Qt's SVG renderer rejected the file")
    written = []
    for size in ICON_SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        target = theme_dir / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(target), "PNG"):
            raise SystemExit(f"cannot write {target}")
        written.append(target)
    return written


def add_desktop_files(bundle: Path) -> None:
    """Copy the desktop entry, the icons and install.sh into the bundle folder.

    The bundle then carries everything `install.sh` installs: `share/applications`
    and `share/icons/hicolor` mirror the XDG layout.
    """
    share = bundle / "share"
    applications = share / "applications"
    applications.mkdir(parents=True, exist_ok=True)
    shutil.copy2(DESKTOP_FILE, applications / DESKTOP_FILE.name)
    icons = share / "icons" / "hicolor"
    shutil.copytree(ICON_THEME_DIR, icons, dirs_exist_ok=True)
    scalable = icons / "scalable" / "apps"
    scalable.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ICON_SVG, scalable / ICON_SVG.name)
    shutil.copy2(REPO / "packaging" / "install.sh", bundle / "install.sh")


def run_pyinstaller(dist: Path, work: Path) -> Path:
    """Run PyInstaller on the spec; return the bundle folder."""
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        raise SystemExit(
            "PyInstaller is not installed; install it with: "
            "python -m pip install -e '.[bundle]'"
        ) from None
    command = [
        sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
        "--distpath", str(dist), "--workpath", str(work), str(SPEC),
    ]  # fmt: skip
    subprocess.run(command, cwd=REPO, check=True)
    return dist / APP_ID


def folder_size(folder: Path) -> int:
    """Return the disk usage of `folder` in bytes, as `du` counts it."""
    total = 0
    for path in folder.rglob("*"):
        if not path.is_symlink():
            total += path.stat().st_blocks * 512
    return total


def smoke_times(bundle: Path, runs: int) -> list[float]:
    """Run the bundle's `--smoke` mode `runs` times; return the wall times in seconds."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LANG="C.UTF-8")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(
            [str(bundle / APP_ID), "--smoke"],
            env=env, capture_output=True, text=True, timeout=SMOKE_TIMEOUT,
        )  # fmt: skip
        times.append(time.perf_counter() - started)
        if result.returncode != 0 or "smoke: ok" not in result.stdout:
            raise SystemExit(
                f"the bundle's --smoke run failed with status {result.returncode}:\n"
                f"{result.stdout[-2000:]}{result.stderr[-3000:]}"
            )
    return times


def bundle_block(size: int, times: list[float], build_seconds: float) -> str:
    """Return the "Bundle" section of docs/benchmarks.md, markers included."""
    import PySide6
    from PyInstaller import __version__ as pyinstaller_version

    lines = [
        BLOCK_BEGIN,
        "## Bundle",
        "",
        "Written by `python packaging/build.py --record`; the benchmark command keeps",
        "this block as it is.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| size of `dist/rpyc-explorer/` on disk (as `du`) | {size / 2**20:.0f} MiB |",
        f"| `--smoke` wall time, median of {len(times)} runs | {statistics.median(times):.2f} s |",
        f"| build time (PyInstaller and copying) | {build_seconds:.0f} s |",
        "",
        "`--smoke` starts the bundle offscreen, opens the main window, zero-deploys",
        "the engine to \"This computer\", lists `/`, closes the session and exits.",
        f"Measured on {platform.platform()} with {os.cpu_count()} cores, Python",
        f"{platform.python_version()}, PySide6 {PySide6.__version__}, PyInstaller",
        f"{pyinstaller_version}.",
        BLOCK_END,
    ]
    return "\n".join(lines) + "\n"


def record(block: str, path: Path = BENCHMARKS) -> None:
    """Replace the Bundle block in `path`, or append it, keeping the rest verbatim."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if BLOCK_BEGIN in text and BLOCK_END in text:
        before, rest = text.split(BLOCK_BEGIN, 1)
        after = rest.split(BLOCK_END, 1)[1]
        text = before + block.rstrip("\n") + after
    elif text.strip():
        text = text.rstrip("\n") + "\n\n" + block
    else:
        # The benchmark command writes the page's title in its own block.
        text = block
    path.write_text(text, encoding="utf-8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, default=REPO / "dist",
                        help="folder that receives rpyc-explorer/ (default: dist)")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "pyinstaller",
                        help="PyInstaller's work folder (default: build/pyinstaller)")
    parser.add_argument("--smoke", action="store_true",
                        help="run the bundle's --smoke mode after building")
    parser.add_argument("--record", action="store_true",
                        help="run --smoke 3 times and write size and times to "
                             "docs/benchmarks.md")
    parser.add_argument("--icons", action="store_true",
                        help="only render the PNG icons from the SVG into resources/")
    return parser.parse_args(argv)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Build the bundle; return the exit status."""
    args = parse_args(argv)
    if args.icons:
        for path in render_icons():
            print(f"wrote {path.relative_to(REPO)}")
        return 0
    started = time.perf_counter()
    bundle = run_pyinstaller(args.dist.resolve(), args.work.resolve())
    add_desktop_files(bundle)
    build_seconds = time.perf_counter() - started
    size = folder_size(bundle)
    print(f"bundle: {bundle} ({size / 2**20:.0f} MiB on disk, built in {build_seconds:.0f} s)")
    if args.smoke or args.record:
        times = smoke_times(bundle, 3 if args.record else 1)
        print(f"bundle: --smoke ok in {statistics.median(times):.2f} s")
        if args.record:
            record(bundle_block(size, times, build_seconds))
            print(f"bundle: recorded in {BENCHMARKS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
