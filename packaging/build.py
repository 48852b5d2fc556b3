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
import re
import shutil
import statistics
import struct
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
# ICU data trees that Qt never opens. Qt Core (checked on PySide6 6.11) calls ICU only
# for converters, collation, case mapping and time-zone names, as
# `nm -D --undefined-only libQt6Core.so.6` lists; Qt Gui and Qt Widgets call none.
ICU_UNUSED_TREES = ("brkitr/", "unit/", "curr/", "lang/", "translit/", "rbnf/")
# Converter tables above this size are the multibyte (CJK) ones; single-byte tables stay.
ICU_MAX_CONVERTER_BYTES = 64 * 1024


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


def elf_section(data: bytes, name: str) -> tuple[int, int]:
    """Return (file offset, size) of the named section of a 64-bit little-endian ELF file."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    (section_offset,) = struct.unpack_from("<Q", data, 0x28)
    entry_size, count, names_index = struct.unpack_from("<HHH", data, 0x3A)
    headers = [
        struct.unpack_from("<IIQQQQ", data, section_offset + index * entry_size)
        for index in range(count)
    ]
    names_offset = headers[names_index][4]
    for name_offset, _kind, _flags, _address, offset, size in headers:
        start = names_offset + name_offset
        if data[start : data.index(b"\0", start)].decode() == name:
            return offset, size
    raise ValueError(f"no section {name!r}")


def trim_icu_data(bundle: Path, work: Path) -> str:
    """Replace the bundle's ICU data library by one without the data Qt never reads.

    The library is ICU's common data package in `.rodata` under the symbol
    `icudt<major>_dat`. It is cut out, `icupkg` drops the unused items, and the C
    compiler wraps the rest into a library of the same name and SONAME.

    Returns:
        What was done, for the build's output.
    """
    # The top of the bundle may hold a symlink to the library; the file is below PySide6.
    libraries = sorted(p for p in bundle.glob("_internal/**/libicudata.so.*") if not p.is_symlink())
    icupkg, compiler = shutil.which("icupkg"), shutil.which("cc") or shutil.which("gcc")
    if not libraries:
        return "no libicudata in the bundle; nothing to trim"
    if icupkg is None or compiler is None:
        return "kept the full ICU data: trimming needs icupkg (icu-devtools) and a C compiler"
    library = libraries[0]
    major = library.name.split(".so.")[1].split(".")[0]
    package = f"icudt{major}l"
    folder = work / "icu"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "items").mkdir(parents=True)
    data = library.read_bytes()
    offset, size = elf_section(data, ".rodata")
    (folder / f"{package}.dat").write_bytes(data[offset : offset + size])
    full = folder / f"{package}.dat"
    listing = subprocess.run([icupkg, "-l", str(full)], capture_output=True, text=True, check=True)
    names = listing.stdout.split()
    converters = [n for n in names if n.endswith(".cnv")]
    (folder / "converters.txt").write_text("\n".join(converters) + "\n")
    subprocess.run([icupkg, "-x", str(folder / "converters.txt"), "-d", str(folder / "items"),
                    str(full)], check=True, capture_output=True)  # fmt: skip
    dropped = [n for n in names if n.startswith(ICU_UNUSED_TREES)] + [
        n for n in converters
        if (folder / "items" / n).stat().st_size > ICU_MAX_CONVERTER_BYTES
    ]  # fmt: skip
    # icupkg names the items after the output file, so it must keep the package name.
    (folder / "out").mkdir()
    trimmed = folder / "out" / f"{package}.dat"
    remove_icu_items(icupkg, full, trimmed, dropped)
    assembly = folder / "icudata.S"
    assembly.write_text(ICU_ASSEMBLY.format(symbol=f"icudt{major}_dat", data=trimmed))
    output = folder / library.name
    subprocess.run([compiler, "-shared", "-nostdlib", f"-Wl,-soname,{library.name}",
                    "-o", str(output), str(assembly)], check=True)  # fmt: skip
    shutil.copy2(output, library)
    return (
        f"trimmed {library.name} from {len(data) / 2**20:.0f} to "
        f"{output.stat().st_size / 2**20:.0f} MiB ({len(dropped)} of {len(names)} items dropped)"
    )


def remove_icu_items(icupkg: str, source: Path, target: Path, dropped: list[str]) -> None:
    """Write `source` without the `dropped` items (extended in place) to `target`.

    Some converter tables only extend another one; icupkg rejects removing the base
    alone and names the dependent item, which is then dropped as well.
    """
    listing = target.parent.parent / "dropped.txt"
    for _attempt in range(5):
        listing.write_text("\n".join(dropped) + "\n")
        result = subprocess.run([icupkg, "-r", str(listing), str(source), str(target)],
                                capture_output=True, text=True)  # fmt: skip
        if result.returncode == 0:
            return
        dependents = re.findall(r"^Item (\S+) depends on missing item", result.stdout + result.stderr, re.M)
        if not dependents:
            raise SystemExit(f"icupkg failed on {source}: {result.stdout}{result.stderr}")
        dropped.extend(dependents)
    raise SystemExit(f"icupkg kept naming dependent items in {source}; build with --full-icu")


ICU_ASSEMBLY = """\
    .section .rodata
    .globl {symbol}
    .type {symbol}, @object
    .balign 16
{symbol}:
    .incbin "{data}"
    .size {symbol}, . - {symbol}
    .section .note.GNU-stack,"",@progbits
"""


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


def bundle_block(size: int, times: list[float], build_seconds: float, icu: str) -> str:
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
        f"| `--smoke` wall time, median (min) of {len(times)} runs "
        f"| {statistics.median(times):.2f} s ({min(times):.2f} s) |",
        f"| build time (PyInstaller, ICU trimming, copying) | {build_seconds:.0f} s |",
        f"| ICU data | {icu} |",
        f"| load average (1 min) after the runs; above {os.cpu_count()} the times are inflated "
        f"| {os.getloadavg()[0]:.1f} |",
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
    parser.add_argument("--full-icu", action="store_true",
                        help="keep all of ICU's data instead of dropping what Qt never reads")
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
    icu = "kept in full (--full-icu)"
    if not args.full_icu:
        icu = trim_icu_data(bundle, args.work.resolve())
        print(f"bundle: {icu}")
    add_desktop_files(bundle)
    build_seconds = time.perf_counter() - started
    size = folder_size(bundle)
    print(f"bundle: {bundle} ({size / 2**20:.0f} MiB on disk, built in {build_seconds:.0f} s)")
    if args.smoke or args.record:
        times = smoke_times(bundle, 3 if args.record else 1)
        print(f"bundle: --smoke ok in {statistics.median(times):.2f} s")
        if args.record:
            record(bundle_block(size, times, build_seconds, icu))
            print(f"bundle: recorded in {BENCHMARKS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
