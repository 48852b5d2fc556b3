"""install.sh: per-user, system-wide (below --destdir) and --uninstall from the manifest."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging_paths import INSTALL_SH

ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def run_install(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["sh", str(INSTALL_SH), *args],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_install_prefix_layout(tmp_path, fake_bundle):
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    run_install("--prefix", str(prefix), "--bundle", str(fake_bundle))
    libdir = prefix / "lib" / "rpyc-explorer"
    launcher = prefix / "bin" / "rpyc-explorer"
    assert launcher.is_symlink()
    assert os.readlink(launcher) == f"{libdir}/rpyc-explorer"
    output = subprocess.run([str(launcher), "--smoke"], capture_output=True, text=True, timeout=10)
    assert output.stdout == "rpyc-explorer-fake --smoke\n"
    desktop = (prefix / "share" / "applications" / "rpyc-explorer.desktop").read_text()
    assert f"\nExec={launcher}\n" in desktop
    assert f"\nTryExec={launcher}\n" in desktop
    assert "\nIcon=rpyc-explorer\n" in desktop
    icons = prefix / "share" / "icons" / "hicolor"
    for size in ICON_SIZES:
        assert (icons / f"{size}x{size}" / "apps" / "rpyc-explorer.png").is_file()
    assert (icons / "scalable" / "apps" / "rpyc-explorer.svg").is_file()
    assert (libdir / "_internal" / "lib" / "data.txt").read_text() == "library\n"
    manifest = (libdir / ".install-manifest").read_text().splitlines()
    assert f"l {launcher}" in manifest
    assert f"d {prefix}/lib" in manifest


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="needs desktop-file-utils")
def test_installed_desktop_entry_validates(tmp_path, fake_bundle):
    prefix = tmp_path / "prefix"
    run_install("--prefix", str(prefix), "--bundle", str(fake_bundle))
    desktop = prefix / "share" / "applications" / "rpyc-explorer.desktop"
    result = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_uninstall_leaves_prefix_empty(tmp_path, fake_bundle):
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    run_install("--prefix", str(prefix), "--bundle", str(fake_bundle))
    assert len(tree(prefix)) > 20
    result = run_install("--prefix", str(prefix), "--uninstall")
    assert "Uninstalled" in result.stdout
    assert tree(prefix) == []


def test_uninstall_keeps_foreign_files(tmp_path, fake_bundle):
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "other-tool").write_text("#!/bin/sh\n")
    run_install("--prefix", str(prefix), "--bundle", str(fake_bundle))
    (prefix / "share" / "applications" / "someone-else.desktop").write_text("[Desktop Entry]\n")
    result = run_install("--prefix", str(prefix), "--uninstall")
    assert "kept" in result.stderr
    assert tree(prefix) == [
        "bin", "bin/other-tool", "share", "share/applications",
        "share/applications/someone-else.desktop",
    ]  # fmt: skip


def test_reinstall_replaces_previous(tmp_path, fake_bundle):
    prefix = tmp_path / "prefix"
    run_install("--prefix", str(prefix), "--bundle", str(fake_bundle))
    (fake_bundle / "_internal" / "lib" / "data.txt").unlink()
    (fake_bundle / "_internal" / "lib" / "new.txt").write_text("v2\n")
    run_install("--prefix", str(prefix), "--bundle", str(fake_bundle))
    lib = prefix / "lib" / "rpyc-explorer" / "_internal" / "lib"
    assert sorted(p.name for p in lib.iterdir()) == ["new.txt"]
    run_install("--prefix", str(prefix), "--uninstall")
    assert not prefix.exists() or tree(prefix) == []


def test_system_layout_below_destdir(tmp_path, fake_bundle):
    root = tmp_path / "root"
    root.mkdir()
    run_install("--system", "--destdir", str(root), "--bundle", str(fake_bundle))
    assert (root / "opt" / "rpyc-explorer" / "rpyc-explorer").is_file()
    launcher = root / "usr" / "local" / "bin" / "rpyc-explorer"
    assert os.readlink(launcher) == "/opt/rpyc-explorer/rpyc-explorer"
    desktop = (root / "usr" / "share" / "applications" / "rpyc-explorer.desktop").read_text()
    assert "\nExec=/usr/local/bin/rpyc-explorer\n" in desktop
    assert (root / "usr" / "share" / "icons" / "hicolor" / "48x48" / "apps" / "rpyc-explorer.png").is_file()
    run_install("--system", "--destdir", str(root), "--uninstall")
    assert tree(root) == []


def test_user_install_default_home(tmp_path, fake_bundle):
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": os.environ["PATH"]}
    run_install("--bundle", str(fake_bundle), env=env)
    assert (home / ".local" / "lib" / "rpyc-explorer" / "rpyc-explorer").is_file()
    assert (home / ".local" / "bin" / "rpyc-explorer").is_symlink()
    assert (home / ".local" / "share" / "applications" / "rpyc-explorer.desktop").is_file()
    run_install("--uninstall", env=env)
    assert tree(home) == []


def test_install_without_bundle_fails(tmp_path):
    result = subprocess.run(
        ["sh", str(INSTALL_SH), "--prefix", str(tmp_path / "p"), "--bundle", str(tmp_path / "none")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "no bundle at" in result.stderr
    assert "python packaging/build.py" in result.stderr
    assert not (tmp_path / "p").exists()


def test_uninstall_without_manifest_fails(tmp_path):
    result = subprocess.run(
        ["sh", str(INSTALL_SH), "--prefix", str(tmp_path), "--uninstall"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "nothing to uninstall" in result.stderr
