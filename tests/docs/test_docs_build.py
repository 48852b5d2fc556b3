"""The documentation site builds with `mkdocs build --strict` and documents the engine.

The strict build turns every MkDocs warning into an error: a broken link or anchor, a
nav entry without its page, or a reference entry that mkdocstrings cannot collect. The
build needs no network access (the theme's web fonts are switched off in mkdocs.yml).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import rpyc_engine

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 300

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None
    or importlib.util.find_spec("mkdocstrings_handlers") is None,
    reason="mkdocs and mkdocstrings-python are not installed; "
    "install the project's test or docs extra (pip install -e '.[docs]')",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the site once into a temporary folder and return that folder."""
    target = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--site-dir",
            str(target),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    assert result.returncode == 0, (
        f"mkdocs build --strict failed with status {result.returncode}:\n"
        f"{result.stdout}\n{result.stderr}"
    )
    return target


def reference_anchors(site: Path) -> set[str]:
    """Return the ids of every heading on the API reference pages."""
    anchors: set[str] = set()
    for page in (site / "reference").rglob("index.html"):
        text = page.read_text("utf-8")
        anchors.update(re.findall(r'id="(rpyc_engine[\w.]*)"', text))
    return anchors


def reference_anchors_of(name: str) -> set[str]:
    """Return the heading ids that may document the public name `name`.

    A name is documented either as rpyc_engine.<name> or where it is defined (the
    lazily imported ones, such as rpyc_engine.server.ThreadedServer).
    """
    value = getattr(rpyc_engine, name)
    if isinstance(value, types.ModuleType):
        return {value.__name__}
    return {f"rpyc_engine.{name}", f"{value.__module__}.{value.__qualname__}"}


def test_site_builds_strict(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "user-guide" / "index.html").is_file()
    assert (site / "migrating-from-rpyc" / "index.html").is_file()


def test_reference_documents_every_public_name(site: Path) -> None:
    anchors = reference_anchors(site)
    missing = [
        name for name in rpyc_engine.__all__ if not reference_anchors_of(name) & anchors
    ]
    assert missing == [], f"public names without a reference entry: {missing}"


def test_all_lists_every_exported_name() -> None:
    # A class or function imported into the package but missing from __all__ escapes
    # the check above. Such a name belongs in __all__ and in the reference.
    exported = {
        name
        for name, value in vars(rpyc_engine).items()
        if not name.startswith("_")
        and str(getattr(value, "__module__", "")).startswith("rpyc_engine")
    }
    undeclared = sorted(exported - set(rpyc_engine.__all__))
    assert undeclared == [], f"names missing from rpyc_engine.__all__: {undeclared}"


def test_pictures_come_from_scripts() -> None:
    # Screenshots are retaken by scripts/screenshot.py and the chart by the benchmark
    # command, so a picture added by hand would go stale unnoticed.
    scripts = [
        REPO / "scripts" / "screenshot.py",
        *sorted((REPO / "bench").glob("*.py")),
    ]
    generators = "".join(script.read_text("utf-8") for script in scripts)
    for picture in sorted((REPO / "docs" / "images").glob("*.png")):
        assert f'"{picture.name}"' in generators, f"no script writes {picture.name}"


def test_pages_use_no_remote_assets(site: Path) -> None:
    # Web fonts would make the build and the pages depend on the network.
    for page in site.rglob("*.html"):
        text = page.read_text("utf-8")
        assert "fonts.googleapis.com" not in text, f"{page} loads a web font"
