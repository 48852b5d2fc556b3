"""Shared helpers of the packaging tests: build.py loaded as a module, a fake bundle."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from packaging_paths import REPO


def load_build_module() -> ModuleType:
    """Import packaging/build.py; packaging/ is not a package (it would shadow `packaging`)."""
    spec = importlib.util.spec_from_file_location("rpyc_explorer_build", REPO / "packaging" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def build_module() -> ModuleType:
    return load_build_module()


@pytest.fixture
def fake_bundle(tmp_path, build_module) -> Path:
    """A bundle folder with the real desktop files and a shell script as the program.

    Building the real bundle takes about a minute; the install tests only need its
    layout, so the PyInstaller output is stood in for by a script (the bundle test
    installs nothing).
    """
    bundle = tmp_path / "dist" / "rpyc-explorer"
    (bundle / "_internal" / "lib").mkdir(parents=True)
    (bundle / "_internal" / "lib" / "data.txt").write_text("library\n")
    program = bundle / "rpyc-explorer"
    program.write_text("#!/bin/sh\necho rpyc-explorer-fake \"$@\"\n")
    program.chmod(0o755)
    build_module.add_desktop_files(bundle)
    return bundle
