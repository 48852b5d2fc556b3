"""The explorer service's helpers called as plain functions, without a connection."""

from __future__ import annotations

import os
import sys
import time

import pytest

from rpyc_engine.protocol import brine
from rpyc_engine.services import explorer_files as files
from rpyc_engine.services.explorer_complete import complete
from rpyc_engine.services.explorer_console import OUTPUT_LIMIT, Console, input_status
from rpyc_engine.services.explorer_methods import ExplorerMethods
from rpyc_engine.services.explorer_objects import (
    SHOW_ALL,
    SHOW_CALLABLES,
    ObjectBrowser,
)
from rpyc_engine.services.explorer_static import static_lookup, static_names


class Tripwire:
    """Counts every attempt to run its code; browsing must leave `hits` empty."""

    hits: list = []
    plain = 7

    @property
    def armed(self) -> int:
        Tripwire.hits.append("property")
        return 1

    def __getattr__(self, name: str) -> int:
        Tripwire.hits.append("getattr " + name)
        return 1

    def __dir__(self) -> list:
        Tripwire.hits.append("dir")
        return []


@pytest.fixture
def tripwire():
    Tripwire.hits = []
    return Tripwire()


def wait_run(console: Console, run_id: int, timeout: float = 10.0) -> tuple:
    """Poll a run until done; return (all chunks, result, traceback)."""
    chunks: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new, done, result, tb = console.poll(run_id, 0.2)
        chunks.extend(new)
        if done:
            return chunks, result, tb
    raise AssertionError(f"console run {run_id} did not finish in {timeout} s")


def test_directory_pages_cover_every_name_once(tmp_path):
    for number in range(1234):
        (tmp_path / f"f{number:05d}").write_bytes(b"x" * (number % 7))
    lister = files.DirectoryLister()
    seen = []
    offset = 0
    while True:
        entries, total, error = lister.page(str(tmp_path), offset, 500)
        assert error is None
        assert total == 1234
        if not entries:
            break
        seen.extend(entry[0] for entry in entries)
        offset += len(entries)
    assert len(seen) == 1234
    assert len(set(seen)) == 1234
    assert brine.dumpable(lister.page(str(tmp_path), 0, 500))


def test_directory_entry_fields(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "data.bin").write_bytes(b"12345")
    os.symlink("data.bin", tmp_path / "link")
    (tmp_path / ".hidden").write_text("h")
    entries, total, error = files.DirectoryLister().page(str(tmp_path))
    by_name = {entry[0]: entry for entry in entries}
    assert error is None
    assert total == 3
    assert ".hidden" not in by_name
    assert entries[0][0] == "sub"
    assert by_name["sub"][1] == "dir"
    assert by_name["data.bin"][1:3] == ("file", 5)
    assert by_name["link"][1] == "link"
    assert by_name["link"][7] == "data.bin"
    assert by_name["data.bin"][5] != ""
    entries, total, _ = files.DirectoryLister().page(str(tmp_path), show_hidden=True)
    assert total == 4


def test_directory_sort_by_size_descending(tmp_path):
    for name, size in (("a", 3), ("b", 10), ("c", 1)):
        (tmp_path / name).write_bytes(b"x" * size)
    entries, _, _ = files.DirectoryLister().page(str(tmp_path), sort="-size")
    assert [entry[0] for entry in entries] == ["b", "a", "c"]


@pytest.mark.parametrize("sort", ["size", "-size"])
def test_size_sort_keeps_folders_in_name_order(sort):
    # Folder sizes are whatever the file system reports for the directory itself.
    entries = [
        ("zeta", "dir", 40, 0.0, 0o40755, "", "", ""),
        ("big", "file", 900, 0.0, 0o100644, "", "", ""),
        ("Alpha", "dir", 4096, 0.0, 0o40755, "", "", ""),
        ("small", "file", 5, 0.0, 0o100644, "", "", ""),
        ("mid", "dir", 120, 0.0, 0o40755, "", "", ""),
    ]
    files._sort(entries, sort)
    expected_files = ["small", "big"] if sort == "size" else ["big", "small"]
    assert [entry[0] for entry in entries] == ["Alpha", "mid", "zeta"] + expected_files


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda p: p / "missing", "not-found"),
        (lambda p: (p / "file").write_text("x") and p / "file", "not-a-directory"),
    ],
)
def test_directory_errors_are_values(tmp_path, make, code):
    path = make(tmp_path)
    entries, total, error = files.DirectoryLister().page(str(path))
    assert entries == ()
    assert total == 0
    assert error[0] == code
    assert error[2] == str(path)


def test_permission_denied_is_a_value(tmp_path):
    if os.geteuid() == 0:
        pytest.skip(
            "root bypasses directory permissions; the integration tests cover it"
        )
    locked = tmp_path / "locked"
    locked.mkdir(mode=0)
    try:
        _, _, error = files.DirectoryLister().page(str(locked))
    finally:
        locked.chmod(0o700)
    assert error[0] == "permission-denied"


def test_upload_commit_and_abort(tmp_path):
    uploads = files.UploadTable()
    target = tmp_path / "out.bin"
    upload_id, error = uploads.open(str(target))
    assert error is None
    assert uploads.write(upload_id, 0, b"hello ") is None
    assert not target.exists()
    assert uploads.write(upload_id, 6, b"world") is None
    assert uploads.commit(upload_id, overwrite=False) is None
    assert target.read_bytes() == b"hello world"

    upload_id, _ = uploads.open(str(target))
    uploads.write(upload_id, 0, b"half")
    uploads.abort(upload_id)
    assert target.read_bytes() == b"hello world"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_upload_commit_refuses_existing(tmp_path):
    uploads = files.UploadTable()
    target = tmp_path / "taken"
    target.write_text("old")
    upload_id, _ = uploads.open(str(target))
    uploads.write(upload_id, 0, b"new")
    error = uploads.commit(upload_id, overwrite=False)
    assert error[0] == "exists"
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_read_range_and_preview(tmp_path):
    data = bytes(range(256)) * 8192
    (tmp_path / "blob").write_bytes(data)
    chunk, size, error = files.read_range(str(tmp_path / "blob"), 1000, 1 << 20)
    assert error is None
    assert size == len(data)
    assert chunk == data[1000 : 1000 + (1 << 20)]
    assert files.read_preview(str(tmp_path / "blob"))[1] is True
    (tmp_path / "text").write_text("héllo\n" * 10)
    text, binary, size, truncated, error = files.read_preview(
        str(tmp_path / "text"), 13
    )
    assert binary is False
    assert truncated is True
    assert text.startswith("héllo\nhéllo")


def test_file_operations(tmp_path):
    assert files.make_directory(str(tmp_path / "d")) is None
    assert files.make_directory(str(tmp_path / "d"))[0] == "exists"
    (tmp_path / "d" / "inner").write_text("x")
    assert files.delete_path(str(tmp_path / "d"))[0] == "not-empty"
    assert files.rename_path(str(tmp_path / "d"), str(tmp_path / "e")) is None
    assert files.delete_path(str(tmp_path / "e"), recursive=True) is None
    assert not (tmp_path / "e").exists()
    assert files.delete_path("/", recursive=True)[0] == "refused"
    (tmp_path / "a.txt").write_text("1")
    assert files.unique_name(str(tmp_path / "a.txt")) == str(tmp_path / "a (1).txt")


def test_static_lookup_runs_nothing(tripwire):
    value, descriptor = static_lookup(tripwire, "armed")
    assert descriptor is True
    assert isinstance(value, property)
    assert static_lookup(tripwire, "plain") == (7, False)
    with pytest.raises(AttributeError):
        static_lookup(tripwire, "missing")
    assert "armed" in set(static_names(tripwire))
    assert Tripwire.hits == []


def test_object_page_does_not_run_properties(tripwire):
    browser = ObjectBrowser({"t": tripwire})
    rows, total, error = browser.page("console", (("key", "t"),), 0, 100, SHOW_ALL, "")
    assert error is None
    by_name = {row[0]: row for row in rows}
    assert by_name["armed"][1] == "property"
    assert by_name["plain"][3] == "7"
    details, error = browser.details("console", (("key", "t"), ("attr", "armed")))
    assert error is None
    assert "not evaluated" in details[1]
    assert Tripwire.hits == []
    row, error = browser.evaluate("console", (("key", "t"), ("attr", "armed")))
    assert Tripwire.hits == ["property"]
    assert row[6] == ("value", "armed")
    assert row[3] == "1"
    details, _ = browser.details("console", (("key", "t"), row[6]))
    assert details[1] == "1"
    assert Tripwire.hits == ["property"]


def test_object_page_of_modules_filters():
    browser = ObjectBrowser({})
    rows, total, error = browser.page("modules", (), 0, 50, 0, "os")
    assert error is None
    assert ("key", "os") in [row[6] for row in rows]
    rows, _, _ = browser.page("modules", (("key", "os"),), 0, 1000, 0, "")
    names = {row[0] for row in rows}
    assert "sep" in names
    assert "getcwd" not in names
    rows, _, _ = browser.page("modules", (("key", "os"),), 0, 1000, SHOW_CALLABLES, "")
    assert "getcwd" in {row[0] for row in rows}
    assert not any(name.startswith("_") for name in names)
    assert brine.dumpable(rows)


def test_object_page_containers():
    namespace = {"d": {"a": [1, 2], object(): 3, 5: "five"}}
    browser = ObjectBrowser(namespace)
    rows, total, error = browser.page("console", (("key", "d"),), 0, 10, SHOW_ALL, "")
    assert total == 3
    steps = {row[0]: row[6] for row in rows}
    assert steps["a"] == ("key", "a")
    assert steps["5"] == ("key", 5)
    odd = [step for step in steps.values() if step[0] == "keyat"]
    assert len(odd) == 1
    rows, _, _ = browser.page("console", (("key", "d"), odd[0]), 0, 10, 0, "")
    assert {row[0]: row[3] for row in rows}["real"] == "3"
    details, _ = browser.details("console", (("key", "d"), odd[0]))
    assert details[1] == "3"
    rows, _, _ = browser.page("console", (("key", "d"), ("key", "a")), 0, 10, 0, "")
    assert [row[3] for row in rows] == ["1", "2"]


def test_object_errors_are_values():
    browser = ObjectBrowser({})
    rows, total, error = browser.page("console", (("key", "nothing"),), 0, 10, 0, "")
    assert rows == ()
    assert error[0] == "KeyError"
    details, error = browser.details("nowhere", ())
    assert details is None
    assert "unknown root" in error[1]


def test_details_source_and_signature():
    browser = ObjectBrowser({})
    path = (("key", __name__), ("attr", "wait_run"))
    details, error = browser.details("modules", path)
    assert error is None
    assert (
        details[3]
        == "(console: 'Console', run_id: 'int', timeout: 'float' = 10.0) -> 'tuple'"
    )
    assert "def wait_run" in details[4]
    assert details[2].startswith("Poll a run")


def test_send_to_console():
    methods = ExplorerMethods()
    name, error = methods.exposed_send_to_console("modules", (("key", "os"),), "")
    assert error is None
    assert name == "obj1"
    assert methods.console.namespace["obj1"] is os


def test_send_to_console_uses_free_own_name():
    methods = ExplorerMethods()
    path = (("key", "os"), ("attr", "getcwd"))
    assert methods.exposed_send_to_console("modules", path, "getcwd") == (
        "getcwd",
        None,
    )
    assert methods.console.namespace["getcwd"] is os.getcwd
    # A bound name, a keyword or a non-identifier never replaces a variable.
    methods.console.namespace["obj1"] = "kept"
    for wanted, expected in (("getcwd", "obj2"), ("class", "obj3"), ("os.path", "obj4")):
        name, error = methods.exposed_send_to_console("modules", path, wanted)
        assert (name, error) == (expected, None)
    assert methods.console.namespace["getcwd"] is os.getcwd
    assert methods.console.namespace["obj1"] == "kept"


def test_completion_is_static(tripwire):
    namespace = {"t": tripwire, "os": os}
    assert complete(namespace, "x = t.ar") == (6, ("armed",))
    assert complete(namespace, "t.armed.") == (8, ())
    assert complete(namespace, "t.nothing.") == (10, ())
    start, names = complete(namespace, "os.path.jo")
    assert (start, names) == (8, ("join",))
    assert "print" in complete(namespace, "pri")[1]
    assert Tripwire.hits == []


@pytest.mark.parametrize(
    ("source", "status"),
    [
        ("x = 1", "complete"),
        ("def f():", "incomplete"),
        ("def f():\n    return 1", "incomplete"),
        ("def f():\n    return 1\n", "complete"),
        ("print(1,", "incomplete"),
        ("x = )", "invalid"),
    ],
)
def test_input_status(source, status):
    assert input_status(source) == status


def test_console_streams_before_done():
    console = Console()
    run_id = console.run("import time\nprint('first')\ntime.sleep(1.0)\nprint('last')")
    chunks, done, _, _ = console.poll(run_id, 3.0)
    assert chunks == (("stdout", "first\n"),)
    assert done is False
    rest, result, tb = wait_run(console, run_id)
    assert rest == [("stdout", "last\n")]
    assert tb == ""


def test_console_result_stderr_and_traceback():
    console = Console()
    chunks, result, tb = wait_run(
        console, console.run("import sys\nsys.stderr.write('e')\n6*7")
    )
    assert chunks == [("stderr", "e")]
    assert result == "42"
    assert console.namespace["_"] == 42
    chunks, result, tb = wait_run(console, console.run("1/0"))
    assert "ZeroDivisionError" in tb
    assert 'File "<console>", line 1' in tb
    assert "explorer_console" not in tb


def test_console_output_of_other_threads_is_untouched(capsys):
    console = Console()
    run_id = console.run("print('inside')")
    print("outside")
    chunks, _, _ = wait_run(console, run_id)
    assert chunks == [("stdout", "inside\n")]
    assert "outside" in capsys.readouterr().out


def test_console_interrupt_stops_busy_loop():
    console = Console()
    run_id = console.run("while True: pass")
    deadline = time.monotonic() + 5
    while not console.interrupt(run_id):
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.05)
    _, _, tb = wait_run(console, run_id)
    assert "KeyboardInterrupt" in tb


def test_console_caps_huge_output():
    console = Console()
    chunks, _, _ = wait_run(console, console.run(f"print('x' * {OUTPUT_LIMIT * 2})"))
    text = "".join(text for stream, text in chunks if stream == "stdout")
    notes = [text for stream, text in chunks if stream == "note"]
    assert len(text) == OUTPUT_LIMIT
    assert "capped" in notes[0]


def test_unknown_run_id_raises():
    with pytest.raises(KeyError, match="no console run"):
        Console().poll(999)


def test_results_are_dumpable(tmp_path):
    methods = ExplorerMethods()
    assert brine.dumpable(methods.exposed_server_info())
    assert brine.dumpable(methods.exposed_stat(str(tmp_path)))
    assert brine.dumpable(methods.exposed_object_details("modules", (("key", "sys"),)))
    assert brine.dumpable(methods.exposed_complete("sys.pa"))
    assert sys.modules is methods.objects.root_object("modules")


def test_object_page_slices_long_sequences():
    browser = ObjectBrowser({"big": list(range(1_000_000)), "s": frozenset({7})})
    rows, total, error = browser.page("console", (("key", "big"),), 999_998, 500, 0, "")
    assert error is None
    assert total == 1_000_000
    assert [row[0] for row in rows] == ["[999998]", "[999999]"]
    assert rows[1][6] == ("item", 999_999)
    rows, total, _ = browser.page("console", (("key", "s"),), 0, 500, 0, "")
    assert [(row[0], row[3]) for row in rows] == [("{0}", "7")]
    details, _ = browser.details("console", (("key", "big"), ("item", 5)))
    assert details[1] == "5"
