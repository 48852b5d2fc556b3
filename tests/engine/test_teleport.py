"""Teleport code tuples: export, import, and rejection of foreign bytecode."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from rpyc_engine.protocol import brine
from rpyc_engine.teleport import (
    CODE_MAGIC,
    TeleportError,
    export_function,
    import_function,
    local_python_version,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def scale(x, y=3, *, offset=0):
    return x * y + offset


def with_nested(values):
    def double(v):
        return v * 2

    return tuple(double(v) for v in values)


def uses_import():
    import os

    return os.getpid()


def test_export_is_brine_dumpable():
    exported = export_function(scale)
    assert brine.dumpable(exported)
    assert exported[0] == "scale"
    assert exported[2] == (3,)
    assert exported[3] == (("offset", 0),)


def test_export_code_layout_matches_version():
    code_tuple = export_function(scale)[4]
    expected = 18 if sys.version_info >= (3, 11) else 16
    assert len(code_tuple) == expected


def test_roundtrip_defaults_and_kwdefaults():
    namespace = {}
    func = import_function(export_function(scale), namespace)
    assert func(2) == 6
    assert func(2, 5, offset=1) == 11
    assert namespace["scale"] is func


def test_roundtrip_nested_code_objects():
    exported = export_function(with_nested)
    nested = [
        c for c in exported[4][7] if isinstance(c, tuple) and c[:1] == (CODE_MAGIC,)
    ]
    assert nested, "the inner function's code should travel as a marked tuple"
    func = import_function(exported, {}, def_=False)
    assert func((1, 2)) == (2, 4)


def test_import_def_false_leaves_namespace():
    namespace = {}
    import_function(export_function(uses_import), namespace, def_=False)
    assert "uses_import" not in namespace


def test_import_without_globals_uses_module():
    func = import_function(export_function(uses_import), None, def_=False)
    assert func() == os.getpid()


def test_closure_rejected():
    factor = 3

    def closure(x):
        return x * factor

    with pytest.raises(TypeError, match="closure over factor"):
        export_function(closure)


def test_non_dumpable_default_rejected():
    def bad(x, acc=[]):  # noqa: B006 - the point of the test
        return acc

    with pytest.raises(TypeError, match="not all brine-dumpable"):
        export_function(bad)


def test_non_dumpable_kwdefault_rejected():
    def bad(x, *, acc={}):  # noqa: B006 - the point of the test
        return acc

    with pytest.raises(TypeError, match="keyword-only defaults"):
        export_function(bad)


def test_builtin_rejected():
    with pytest.raises(TypeError, match="expected a plain Python function"):
        export_function(len)


def test_import_rejects_other_minor_version():
    # A second interpreter version may not exist on every machine. So this test declares
    # the sender's version by hand, and the test below uses a real one when present.
    major, minor = local_python_version()
    exported = export_function(scale)
    with pytest.raises(TeleportError) as info:
        import_function(exported, {}, True, python_version=(major, minor - 1))
    message = str(info.value)
    assert f"CPython {major}.{minor - 1}" in message
    assert f"CPython {major}.{minor}" in message


def test_import_rejects_foreign_layout():
    exported = export_function(scale)
    code = exported[4]
    if len(code) == 18:
        foreign = code[:12] + code[13:15] + code[16:]  # the 3.8-3.10 layout
        sender = "CPython 3.8 to 3.10"
    else:
        foreign = code[:12] + ("scale",) + code[12:14] + (b"",) + code[14:]
        sender = "CPython 3.11 or newer"
    with pytest.raises(TeleportError, match=sender):
        import_function(exported[:4] + (foreign,), {})


def _other_interpreter():
    """Find an installed CPython whose minor version differs from this one."""
    mine = "python{}.{}".format(*local_python_version())
    for candidate in (
        "python3.12",
        "python3.10",
        "python3.13",
        "python3.9",
        "python3.8",
    ):
        path = shutil.which(candidate)
        # pyenv shims exist for versions that are not active and then fail to run.
        if path and candidate != mine and "/shims/" not in path:
            return path
    pyenv = os.path.expanduser("~/.pyenv/versions")
    if os.path.isdir(pyenv):
        for name in sorted(os.listdir(pyenv)):
            exe = os.path.join(pyenv, name, "bin", "python3")
            parts = name.split(".")
            if len(parts) >= 2 and parts[0] == "3" and parts[1].isdigit():
                if int(parts[1]) >= 8 and (3, int(parts[1])) != local_python_version():
                    if os.access(exe, os.X_OK):
                        return exe
    return None


@pytest.mark.skipif(
    _other_interpreter() is None, reason="no second CPython version installed"
)
def test_real_other_interpreter_rejects_tuple():
    exported = export_function(scale)
    script = textwrap.dedent(
        """
        import sys
        from rpyc_engine.protocol import brine
        from rpyc_engine.teleport import TeleportError, import_function
        exported = brine.load(sys.stdin.buffer.read())
        try:
            import_function(exported, {})
        except TeleportError as exc:
            print(exc)
            sys.exit(3)
        sys.exit(0)
        """
    )
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    result = subprocess.run(
        [_other_interpreter(), "-c", script],
        input=brine.dump(exported),
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 3, result.stderr.decode()
    assert "bytecode does not travel" in result.stdout.decode()


def _installed_interpreters():
    """Return the CPython 3.8+ interpreters pyenv installed on this machine, if any."""
    pyenv = os.path.expanduser("~/.pyenv/versions")
    found = []
    if os.path.isdir(pyenv):
        for name in sorted(os.listdir(pyenv)):
            parts = name.split(".")
            exe = os.path.join(pyenv, name, "bin", "python3")
            if len(parts) >= 2 and parts[0] == "3" and parts[1].isdigit():
                if int(parts[1]) >= 8 and os.access(exe, os.X_OK):
                    found.append(exe)
    return found or [sys.executable]


ROUND_TRIP = textwrap.dedent(
    """
    import sys
    from rpyc_engine.protocol import brine
    from rpyc_engine.teleport import export_function, import_function

    def f(x, y=3, *, z=1):
        def g(a):
            return a + 1
        return g(x * y) + z

    exported = brine.load(brine.dump(export_function(f)))
    h = import_function(exported, {})
    print(len(exported[4]), h(2), h(2, 4, z=0))
    """
)


@pytest.mark.parametrize("interpreter", _installed_interpreters())
def test_round_trip_on_each_interpreter(interpreter):
    result = subprocess.run(
        [interpreter, "-c", ROUND_TRIP],
        capture_output=True,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    fields, first, second = result.stdout.split()
    assert int(fields) in (16, 18)
    assert int(first) == 8
    assert int(second) == 9
