"""The PyInstaller bundle: built by packaging/build.py, then started in --smoke mode.

The smoke run opens the main window offscreen and zero-deploys the engine to "This
computer" from inside the bundle, so it also checks that the engine's server part
(its .py files, collected as data) is there. One build takes about a minute on two
cores; scripts/test.sh --quick skips this module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging_paths import REPO

pytest.importorskip("PyInstaller", reason="install the bundle extra: pip install -e '.[bundle]'")

pytestmark = [pytest.mark.bundle, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    result = subprocess.run(
        [sys.executable, str(REPO / "packaging" / "build.py"),
         "--dist", str(out / "dist"), "--work", str(out / "work")],
        cwd=REPO, capture_output=True, text=True, timeout=800,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return out / "dist" / "rpyc-explorer"


def run_smoke(bundle: Path, **env: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, QT_QPA_PLATFORM="offscreen", LANG="C.UTF-8", **env)
    environment.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(bundle / "rpyc-explorer"), "--smoke"],
        env=environment, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def test_bundle_smoke_connects_this_computer(bundle):
    result = run_smoke(bundle)
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    assert "smoke: connected to this computer" in result.stdout
    assert "smoke: ok" in result.stdout


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb")
def test_bundle_smoke_on_xcb(bundle):
    """The bundled xcb platform plugin and the libraries it loads work on an X server."""
    environment = dict(os.environ, QT_QPA_PLATFORM="xcb", LANG="C.UTF-8")
    result = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", str(bundle / "rpyc-explorer"), "--smoke"],
        env=environment, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    assert "smoke: ok" in result.stdout
    assert "Could not load the Qt platform plugin" not in result.stderr


@pytest.mark.skipif(
    shutil.which("dbus-run-session") is None or shutil.which("gnome-keyring-daemon") is None,
    reason="needs dbus and gnome-keyring",
)
def test_bundle_uses_secret_service(bundle):
    """The bundled SecretService backend (secretstorage, jeepney) reaches a real keyring.

    Naming the backend makes keyring import it and ask the D-Bus daemon for its
    priority, so a module missing from the bundle or a broken D-Bus client fails here.
    """
    environment = dict(
        os.environ, QT_QPA_PLATFORM="offscreen", LANG="C.UTF-8",
        PYTHON_KEYRING_BACKEND="keyring.backends.SecretService.Keyring",
    )  # fmt: skip
    script = (
        'printf %s bundle-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null; '
        'exec "$@"'
    )
    result = subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", script, "_", str(bundle / "rpyc-explorer"), "--smoke"],
        env=environment, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    assert "smoke: ok" in result.stdout
    assert "no system keyring" not in result.stderr


def test_bundle_reads_site_file_next_to_program(bundle, tmp_path):
    site = bundle / "site.toml"
    site.write_text("[policies]\nconnect_timeout = = 1\n", encoding="utf-8")
    try:
        result = run_smoke(bundle)
    finally:
        site.unlink()
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"{site.resolve()}, line 2: invalid TOML" in result.stderr


def test_bundle_carries_engine_sources(bundle):
    engine = bundle / "_internal" / "rpyc_engine"
    sources = {p.relative_to(engine).as_posix() for p in engine.rglob("*.py")}
    expected = {p.relative_to(REPO / "rpyc_engine").as_posix()
                for p in (REPO / "rpyc_engine").rglob("*.py") if "__pycache__" not in p.parts}
    assert sources == expected


def test_bundle_leaves_out_unused_qt(bundle):
    internal = bundle / "_internal"
    names = [p.relative_to(internal).as_posix() for p in internal.rglob("*")]
    platforms = sorted(p.name for p in (internal / "PySide6" / "Qt" / "plugins" / "platforms").iterdir())
    assert platforms == ["libqoffscreen.so", "libqxcb.so"]
    assert not [p for p in internal.rglob("*") if p.is_symlink() and not p.exists()]
    assert any("plugins/imageformats/libqjpeg" in n for n in names)
    for unwanted in ("QtQml", "QtQuick", "QtWebEngine", "QtNetwork", "QtOpenGL",
                     "Qt/translations", "wayland", "eglfs", "libqgtk3", "libgtk-3"):
        assert not [n for n in names if unwanted.lower() in n.lower()], unwanted


def test_bundle_has_desktop_files(bundle):
    assert (bundle / "share" / "applications" / "rpyc-explorer.desktop").is_file()
    assert (bundle / "share" / "icons" / "hicolor" / "256x256" / "apps" / "rpyc-explorer.png").is_file()
    assert (bundle / "install.sh").is_file()


ICU_CHECK = """
from PySide6.QtCore import QCollator, QLocale, QStringDecoder, QTimeZone
collator = QCollator(QLocale("de_DE"))
print(sorted(["b", "\\u00c4", "a"], key=collator.sortKey))
print(QLocale("tr_TR").toUpper("i"), QLocale("de_DE").toUpper("stra\\u00dfe"))
print(QStringDecoder("ISO-8859-15").isValid(), QStringDecoder("Shift_JIS").isValid())
zone = QTimeZone(b"Europe/Berlin")
print(zone.displayName(QTimeZone.TimeType.StandardTime, QTimeZone.NameType.LongName, QLocale("de_DE")))
"""


@pytest.mark.skipif(
    shutil.which("icupkg") is None or shutil.which("cc") is None,
    reason="trimming ICU's data needs icupkg and a C compiler",
)
def test_bundle_trimmed_icu_still_serves_qt(bundle):
    """Qt's ICU uses (collation, case mapping, converters, zone names) work on the trimmed data.

    The bundle cannot run a script, so the trimmed library is preloaded into this
    Python's PySide6, which links the same ICU version.
    """
    libraries = [p for p in bundle.glob("_internal/**/libicudata.so.*") if not p.is_symlink()]
    assert len(libraries) == 1
    assert libraries[0].stat().st_size < 20 * 2**20
    environment = dict(os.environ, LD_PRELOAD=str(libraries[0]), LANG="C.UTF-8")
    result = subprocess.run(
        [sys.executable, "-c", ICU_CHECK], env=environment, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "['a', 'Ä', 'b']",
        "İ STRASSE",
        "True False",
        "Mitteleuropäische Normalzeit",
    ]
    assert "Could not create collator" not in result.stderr


def test_bundle_answers_ssh_askpass(bundle, monkeypatch):
    """ssh's SSH_ASKPASS wrapper, written as in the bundle, reaches the application.

    The askpass server runs in this test process; with `sys.frozen` set it writes
    the wrapper the bundled application writes, which runs the bundle's program.
    """
    from rpyc_explorer.machines.credentials import Secret
    from rpyc_explorer.session.askpass import AskpassServer, SessionDir

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(bundle / "rpyc-explorer"))
    prompts = []

    def answer(request):
        prompts.append(request.prompt)
        return Secret("s3cret")

    directory = SessionDir()
    server = AskpassServer(directory, answer)
    server.start()
    try:
        wrapper = server.environment()["SSH_ASKPASS"]
        assert "--askpass" in Path(wrapper).read_text()
        environment = dict(os.environ, **server.environment())
        result = subprocess.run(
            [wrapper, "deploy@build01's password: "],
            env=environment, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        server.stop()
        directory.remove()
    assert result.returncode == 0, result.stderr
    assert result.stdout == "s3cret\n"
    assert prompts == ["deploy@build01's password: "]



def test_installed_bundle_starts_from_launcher(bundle, tmp_path):
    """The launcher symlink that install.sh writes starts the real bundle."""
    prefix = tmp_path / "prefix"
    install = [str(bundle / "install.sh"), "--prefix", str(prefix)]
    subprocess.run(install, check=True, capture_output=True, timeout=120)
    try:
        environment = dict(os.environ, QT_QPA_PLATFORM="offscreen", LANG="C.UTF-8")
        result = subprocess.run(
            [str(prefix / "bin" / "rpyc-explorer"), "--smoke"],
            env=environment, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
    finally:
        subprocess.run([*install, "--uninstall"], check=True, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    assert "smoke: ok" in result.stdout
    assert list(prefix.rglob("*")) == []
