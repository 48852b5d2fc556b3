"""vinegar: exception wire form, rebuilding on the receiver, and hostile input."""

from __future__ import annotations

import sys

import pytest

from rpyc_engine.protocol import brine, vinegar
from rpyc_engine.protocol.errors import ProtocolError
from rpyc_engine.protocol.vinegar import GenericException, dump_exception, load_exception

BANNER_1 = "\n\n========= Remote Traceback (1) =========\n"


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def _round_trip(exc: BaseException, **options) -> BaseException:
    data = brine.load(brine.dump(dump_exception(exc)))
    return load_exception(data, **options)


def _attrs(data) -> dict:
    return dict(data[2])


def test_stop_iteration_is_int_1():
    assert dump_exception(StopIteration()) == 1
    assert type(load_exception(1)) is StopIteration


def test_stop_iteration_subclass_is_not_int_1():
    class Done(StopIteration):
        pass

    assert dump_exception(Done()) != 1


def test_key_error_wire_form():
    data = dump_exception(_raised(KeyError("nope")))
    assert data[0] == ("builtins", "KeyError")
    assert data[1] == ("nope",)
    assert data[2][-1] == ("_remote_version", "6.0.2")
    assert data[3].startswith("Traceback (most recent call last):")
    assert "KeyError: 'nope'" in data[3]
    assert brine.dumpable(data)


def test_attrs_sorted_public_and_no_args():
    data = dump_exception(_raised(OSError(2, "missing", "/tmp/x")))
    names = [name for name, _ in data[2]]
    assert names[-1] == "_remote_version"
    assert names[:-1] == sorted(names[:-1])
    assert "args" not in names
    assert "with_traceback" not in names
    assert all(not name.startswith("_") for name in names[:-1])
    assert _attrs(data)["errno"] == 2
    assert _attrs(data)["filename"] == "/tmp/x"


def test_undumpable_args_and_attrs_sent_as_repr():
    exc = ValueError("x", [1, 2])
    exc.data = [1]
    data = dump_exception(exc)
    assert data[1] == ("x", "[1, 2]")
    assert _attrs(data)["data"] == "[1]"


def test_denied_traceback_and_version():
    data = dump_exception(ValueError("v"), include_traceback=False, include_version=False)
    assert data[3] == "<traceback denied>"
    assert data[2][-1] == ("_remote_version", "<version denied>")


def test_key_error_round_trip():
    rebuilt = _round_trip(_raised(KeyError("nope")))
    assert isinstance(rebuilt, KeyError)
    assert rebuilt.args == ("nope",)
    assert str(rebuilt).startswith("'nope'" + BANNER_1 + "Traceback")
    assert repr(rebuilt) == str(rebuilt)
    assert "KeyError: 'nope'" in rebuilt._remote_tb


def test_os_error_round_trip_keeps_errno_and_filename():
    rebuilt = _round_trip(_raised(FileNotFoundError(2, "No such file", "/nope")))
    assert isinstance(rebuilt, FileNotFoundError)
    assert rebuilt.errno == 2
    assert rebuilt.filename == "/nope"
    assert rebuilt.strerror == "No such file"


def test_chained_exception_traceback_contains_cause():
    try:
        try:
            {}["k"]
        except KeyError as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError as exc:
        rebuilt = _round_trip(exc)
    assert isinstance(rebuilt, RuntimeError)
    assert "KeyError: 'k'" in rebuilt._remote_tb
    assert "direct cause" in rebuilt._remote_tb
    assert "RuntimeError: outer" in rebuilt._remote_tb


def test_rebuilt_class_name_and_module_kept():
    rebuilt = _round_trip(ValueError("v"))
    assert type(rebuilt).__name__ == "ValueError"
    assert type(rebuilt).__module__ == "builtins"
    assert type(rebuilt) is not ValueError


def test_custom_class_not_importable_becomes_generic():
    rebuilt = load_exception((("mymod", "Oops"), ("x",), (), "tb"))
    assert isinstance(rebuilt, GenericException)
    assert isinstance(rebuilt, Exception)
    assert type(rebuilt).__name__ == "mymod.Oops"
    assert rebuilt.args == ("x",)
    assert str(rebuilt) == "x" + BANNER_1 + "tb"


def test_generic_class_cached_per_name():
    first = load_exception((("mymod", "Oops"), (), (), ""))
    second = load_exception((("mymod", "Oops"), (), (), ""))
    other = load_exception((("mymod", "Other"), (), (), ""))
    assert type(first) is type(second)
    assert type(first) is not type(other)


def test_generic_exception_forwarded_with_original_name():
    rebuilt = load_exception((("mymod", "Oops"), ("x",), (), "tb"))
    assert dump_exception(rebuilt)[0] == ("mymod", "Oops")


def test_custom_class_ignored_without_instantiate_custom():
    data = dump_exception(ProtocolError("bad"))
    assert data[0] == ("rpyc_engine.protocol.errors", "ProtocolError")
    rebuilt = load_exception(data)
    assert not isinstance(rebuilt, ProtocolError)
    assert isinstance(rebuilt, GenericException)


def test_custom_class_used_with_instantiate_custom():
    rebuilt = load_exception(dump_exception(ProtocolError("bad")), instantiate_custom=True)
    assert isinstance(rebuilt, ProtocolError)
    assert rebuilt.args == ("bad",)


def test_non_exception_class_rejected_with_instantiate_custom():
    rebuilt = load_exception((("builtins", "dict"), (), (), ""), instantiate_custom=True)
    assert isinstance(rebuilt, GenericException)
    assert type(rebuilt).__name__ == "builtins.dict"


def test_no_import_without_import_custom():
    name = "json.tool"
    was_loaded = name in sys.modules
    load_exception(((name, "Whatever"), (), (), ""), instantiate_custom=True)
    assert (name in sys.modules) == was_loaded


def test_import_custom_imports_module(tmp_path, monkeypatch):
    (tmp_path / "peer_errors_mod.py").write_text("class PeerError(Exception):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "peer_errors_mod", raising=False)
    data = (("peer_errors_mod", "PeerError"), ("p",), (), "")
    assert isinstance(load_exception(data, instantiate_custom=True), GenericException)
    assert "peer_errors_mod" not in sys.modules
    rebuilt = load_exception(data, instantiate_custom=True, import_custom=True)
    assert isinstance(rebuilt, sys.modules["peer_errors_mod"].PeerError)
    assert rebuilt.args == ("p",)


def test_import_custom_missing_module_falls_back():
    rebuilt = load_exception(
        (("no_such_module_xyz", "E"), (), (), ""), instantiate_custom=True, import_custom=True
    )
    assert isinstance(rebuilt, GenericException)


def test_init_not_called():
    calls = []

    class Loud(Exception):
        def __init__(self, *args):
            calls.append(args)
            super().__init__(*args)

    module = sys.modules[__name__]
    module.Loud = Loud
    try:
        rebuilt = load_exception(
            ((__name__, "Loud"), ("a",), (), ""), instantiate_custom=True
        )
    finally:
        del module.Loud
    assert isinstance(rebuilt, Loud)
    assert calls == []
    assert rebuilt.args == ("a",)


def test_read_only_and_dunder_attrs_skipped():
    data = (
        ("builtins", "ValueError"),
        ("v",),
        (("__class__", "x"), ("__traceback__", 5), ("custom", 1), ("_remote_version", "6.0.2")),
        "tb",
    )
    rebuilt = load_exception(data)
    assert isinstance(rebuilt, ValueError)
    assert rebuilt.custom == 1
    assert rebuilt._remote_version == "6.0.2"


def test_banner_numbering_counts_earlier_banners():
    first = load_exception((("builtins", "ValueError"), ("v",), (), "tb1"))
    data = dump_exception(first)
    second = load_exception(data)
    assert "Remote Traceback (2)" in str(second)


def test_version_warning_for_other_major():
    data = (("builtins", "ValueError"), (), (("_remote_version", "5.3.1"),), "tb")
    assert "WARNING: Remote is on RPyC 5.3.1" in load_exception(data)._remote_tb
    data = (("builtins", "ValueError"), (), (("_remote_version", "6.0.0"),), "tb")
    assert "WARNING" not in load_exception(data)._remote_tb


def test_legacy_string_form_becomes_exception():
    rebuilt = load_exception("old style")
    assert isinstance(rebuilt, Exception)
    assert rebuilt.args == ("old style",)


class _Hostile(Exception):
    def __repr__(self):
        raise RuntimeError("repr broke")

    def __str__(self):
        raise RuntimeError("str broke")

    @property
    def broken(self):
        raise RuntimeError("getter broke")


class _BadRepr:
    def __repr__(self):
        raise RuntimeError("no repr")


def test_dump_survives_hostile_exception():
    exc = _raised(_Hostile(_BadRepr()))
    data = dump_exception(exc)
    assert brine.dumpable(data)
    assert "repr() raised RuntimeError" in data[1][0]
    assert "broken" not in _attrs(data)


def test_str_of_rebuilt_hostile_class_does_not_raise():
    module = sys.modules[__name__]
    rebuilt = load_exception(
        ((__name__, "_Hostile"), (), (), "tb"), instantiate_custom=True
    )
    assert isinstance(rebuilt, module._Hostile)
    assert "str() raised RuntimeError" in str(rebuilt)


MALFORMED = [
    ("int 2", 2),
    ("none", None),
    ("3-tuple", (("builtins", "E"), (), ())),
    ("names not tuple", ("builtins.E", (), (), "")),
    ("names of ints", ((1, 2), (), (), "")),
    ("names 3-tuple", (("a", "b", "c"), (), (), "")),
    ("args not tuple", (("builtins", "E"), "x", (), "")),
    ("attrs not tuple", (("builtins", "E"), (), "x", "")),
    ("attr not pair", (("builtins", "E"), (), (("a",),), "")),
    ("attr name int", (("builtins", "E"), (), ((1, 2),), "")),
    ("traceback bytes", (("builtins", "E"), (), (), b"tb")),
    ("nul in class name", (("builtins", "E\x00"), (), (), "")),
]


@pytest.mark.parametrize("case,data", MALFORMED, ids=[c for c, _ in MALFORMED])
def test_malformed_raises_protocol_error(case, data):
    with pytest.raises(ProtocolError):
        load_exception(data)


def test_generic_exception_module():
    assert vinegar.GenericException.__mro__[1] is Exception


class _Final(Exception):
    def __init_subclass__(cls, **kwargs):
        raise TypeError("no subclasses")


class _NeedsArgument(Exception):
    def __new__(cls, required):
        return super().__new__(cls, required)


@pytest.mark.parametrize("class_name", ["_Final", "_NeedsArgument"])
def test_unusable_custom_class_falls_back_to_generic(class_name):
    data = ((__name__, class_name), ("a",), (), "tb")
    rebuilt = load_exception(data, instantiate_custom=True)
    assert isinstance(rebuilt, GenericException)
    assert type(rebuilt).__name__ == "%s.%s" % (__name__, class_name)
    assert rebuilt.args == ("a",)
