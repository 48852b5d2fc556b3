"""The desktop entry, the icons and the packaging folder's own rules."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from packaging_paths import REPO

RESOURCES = REPO / "resources"


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="needs desktop-file-utils")
def test_desktop_entry_validates():
    desktop = RESOURCES / "rpyc-explorer.desktop"
    result = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_desktop_entry_names_icon_and_program():
    lines = (RESOURCES / "rpyc-explorer.desktop").read_text().splitlines()
    assert lines[0] == "[Desktop Entry]"
    assert "Icon=rpyc-explorer" in lines
    assert "Exec=rpyc-explorer" in lines
    # Qt sets WM_CLASS from the program name; the entry must match it.
    assert "StartupWMClass=rpyc-explorer" in lines


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("size", [16, 24, 32, 48, 64, 128, 256, 512])
def test_icon_png_sizes(size):
    path = RESOURCES / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "rpyc-explorer.png"
    assert png_size(path.read_bytes()) == (size, size)


def test_icon_svg_square():
    root = ElementTree.parse(RESOURCES / "rpyc-explorer.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox") == "0 0 256 256"


def test_icons_render_from_svg(qapp, tmp_path, build_module):
    """Runs on pytest-qt's QApplication: a QGuiApplication made here would stop later widget tests."""
    written = build_module.render_icons(theme_dir=tmp_path)
    assert len(written) == 8
    for path in written:
        size = int(path.parent.parent.name.split("x")[0])
        assert png_size(path.read_bytes()) == (size, size)


def test_packaging_folder_is_not_a_package():
    assert not (REPO / "packaging" / "__init__.py").exists()
    import packaging.version

    assert "site-packages" in packaging.version.__file__ or "dist-packages" in packaging.version.__file__


def test_benchmarks_block_replaced_in_place(tmp_path, build_module):
    path = tmp_path / "benchmarks.md"
    path.write_text("# Benchmarks\n\nother text\n")
    block = f"{build_module.BLOCK_BEGIN}\n## Bundle\nfirst\n{build_module.BLOCK_END}\n"
    build_module.record(block, path)
    build_module.record(block.replace("first", "second"), path)
    text = path.read_text()
    assert text.count(build_module.BLOCK_BEGIN) == 1
    assert "second" in text
    assert "first" not in text
    assert text.startswith("# Benchmarks\n\nother text\n")


def test_elf_section_finds_rodata(build_module):
    data = Path(sys.executable).resolve().read_bytes()
    offset, size = build_module.elf_section(data, ".rodata")
    assert 0 < offset < len(data)
    assert 0 < size <= len(data) - offset
    with pytest.raises(ValueError, match="no section"):
        build_module.elf_section(data, ".no-such-section")
    with pytest.raises(ValueError, match="not a 64-bit"):
        build_module.elf_section(b"#!/bin/sh\n", ".rodata")
