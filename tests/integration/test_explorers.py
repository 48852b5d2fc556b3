"""The explorer service deployed for real: plumbum ``local`` and the loopback sshd.

Every test file and directory is made on the remote side through the deployed classic
API, so the same tests work when the remote user differs from ours (the sshd test user).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import time

import pytest
from explorer_support import FrameCounter, make_session
from plumbum import local

from rpyc_engine.deploy import DeployedServer


SERVICE = "rpyc_engine.services.explorer.ExplorerService"
FILE_COUNT = 10_000
PAGE = 500

pytestmark = pytest.mark.timeout(120)

GADGET = """
class Gadget:
    runs = 0

    @property
    def counted(self):
        Gadget.runs += 1
        return Gadget.runs

    def __getattr__(self, name):
        Gadget.runs += 100
        raise AttributeError(name)

gadget = Gadget()
"""


class Remote:
    """A deployed ExplorerService, its connection and a scratch directory over there."""

    def __init__(self, server: DeployedServer) -> None:
        self.server = server
        self.conn = server.connect()
        self.counter = FrameCounter(self.conn._driver.stream)
        self.root = self.conn.root
        self.scratch = self.root.eval(
            "__import__('tempfile').mkdtemp(prefix='explorer-test-')"
        )

    def run(self, code: str) -> None:
        self.root.execute(code)

    def close(self) -> None:
        # Mode-000 directories are opened up first so rmtree can enter them.
        self.root.execute(
            f"import shutil, os\nfor d, subdirs, _ in os.walk({self.scratch!r}):\n"
            f"    for s in subdirs: os.chmod(os.path.join(d, s), 0o700)\n"
            f"shutil.rmtree({self.scratch!r})"
        )
        self.conn.close()


def _deploy_local() -> DeployedServer:
    return DeployedServer(local, service=SERVICE)


@pytest.fixture(
    scope="module", params=["local", pytest.param("ssh", marks=pytest.mark.ssh)]
)
def server(request):
    if request.param == "local":
        deployed = _deploy_local()
        yield deployed
        deployed.close()
        return
    sshd = request.getfixturevalue("sshd_server")
    machine = sshd.ssh_machine()
    deployed = DeployedServer(machine, service=SERVICE)
    yield deployed
    deployed.close()
    machine.close()


@pytest.fixture
def remote(server):
    handle = Remote(server)
    yield handle
    handle.close()


def test_service_runs_in_deployed_process(remote):
    pid = remote.root.server_info()[0]
    assert pid == remote.server.remote_pid
    assert pid != os.getpid()


def test_ten_thousand_files_page_once_each(remote):
    big = remote.scratch + "/big"
    remote.run(
        f"import os\nos.mkdir({big!r})\n"
        f"for i in range({FILE_COUNT}):\n"
        f"    open(os.path.join({big!r}, 'f%05d' % i), 'w').close()"
    )
    list_dir = remote.root.list_dir  # one GETATTR, then one CALL per page
    seen: list[str] = []
    trips: list[int] = []
    first_page_seconds = 0.0
    offset = 0
    while True:
        before = remote.counter.round_trips
        started = time.monotonic()
        entries, total, error = list_dir(big, offset, PAGE, False, "name")
        if offset == 0:
            first_page_seconds = time.monotonic() - started
        trips.append(remote.counter.round_trips - before)
        assert error is None
        assert total == FILE_COUNT
        if not entries:
            break
        seen.extend(entry[0] for entry in entries)
        offset += len(entries)
    assert len(seen) == FILE_COUNT
    assert len(set(seen)) == FILE_COUNT
    assert seen == sorted(seen)
    assert max(trips) == 1
    print(
        f"\nfirst page of {FILE_COUNT} entries: {first_page_seconds * 1000:.0f} ms; "
        f"round trips per page: {sorted(set(trips))}"
    )


def test_vanished_directory_is_an_error_value(remote):
    path = remote.scratch + "/soon-gone"
    remote.run(f"import os\nos.mkdir({path!r})\nopen({path!r} + '/x', 'w').close()")
    entries, total, error = remote.root.list_dir(path, 0, PAGE, False, "name")
    assert error is None
    remote.run(f"import shutil\nshutil.rmtree({path!r})")
    entries, total, error = remote.root.list_dir(path, 0, PAGE, False, "name")
    assert entries == ()
    assert error[0] == "not-found"
    assert error[2] == path


def test_permission_denied_is_an_error_value(remote):
    if remote.root.eval("__import__('os').geteuid()") == 0:
        pytest.skip(
            "the remote user is root, which bypasses directory permissions; "
            "test_permission_denied_as_unprivileged_user covers it locally"
        )
    locked = remote.scratch + "/locked"
    remote.run(f"import os\nos.mkdir({locked!r})\nos.chmod({locked!r}, 0)")
    entries, total, error = remote.root.list_dir(locked, 0, PAGE, False, "name")
    assert entries == ()
    assert error[0] == "permission-denied"


def test_permission_denied_as_unprivileged_user(tmp_path):
    """Deploy through setpriv as ``nobody`` so a mode-000 directory is denied."""
    if os.geteuid() != 0:
        pytest.skip(
            "dropping privileges needs root; as a normal user the test above runs"
        )
    if not shutil.which("setpriv") or not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs setpriv and /usr/bin/python3 to start the server as nobody")
    wrapper = tmp_path / "python-as-nobody"
    wrapper.write_text(
        "#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups "
        '/usr/bin/python3 "$@"\n'
    )
    wrapper.chmod(0o755)
    with DeployedServer(
        local, service=SERVICE, python_executable=str(wrapper)
    ) as server:
        conn = server.connect()
        try:
            root = conn.root
            assert root.eval("__import__('os').geteuid()") == 65534
            locked = root.eval("__import__('tempfile').mkdtemp()")
            root.execute(f"import os\nos.chmod({locked!r}, 0)")
            entries, total, error = root.list_dir(locked, 0, PAGE, False, "name")
            root.execute(f"os.chmod({locked!r}, 0o700)\nos.rmdir({locked!r})")
        finally:
            conn.close()
    assert entries == ()
    assert error[0] == "permission-denied"
    assert error[2] == locked


def test_browsing_and_completion_run_no_property(remote):
    remote.run(GADGET)
    rows, total, error = remote.root.object_page(
        "console", (("key", "gadget"),), 0, PAGE, 7, ""
    )
    assert error is None
    by_name = {row[0]: row for row in rows}
    assert by_name["counted"][1] == "property"
    details, error = remote.root.object_details(
        "console", (("key", "gadget"), ("attr", "counted"))
    )
    assert "not evaluated" in details[1]
    assert remote.root.complete("gadget.cou") == (7, ("counted",))
    assert remote.root.complete("gadget.counted.") == (15, ())
    assert remote.root.complete("gadget.missing.") == (15, ())
    assert remote.root.eval("Gadget.runs") == 0
    row, error = remote.root.evaluate(
        "console", (("key", "gadget"), ("attr", "counted"))
    )
    assert row[3] == "1"
    assert remote.root.eval("Gadget.runs") == 1


def poll_until_done(root, run_id: int, timeout: float = 30.0) -> tuple[list, str, str]:
    chunks: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new, done, result, traceback_text = root.console_poll(run_id, 0.5)
        chunks.extend(new)
        if done:
            return chunks, result, traceback_text
    raise AssertionError(f"console run {run_id} still running after {timeout} s")


def test_interrupt_stops_busy_loop(remote):
    run_id = remote.root.console_run("while True: pass")
    deadline = time.monotonic() + 10
    while not remote.root.console_interrupt(run_id):
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.05)
    _, _, traceback_text = poll_until_done(remote.root, run_id)
    assert "KeyboardInterrupt" in traceback_text


def test_output_streams_before_the_end(remote):
    run_id = remote.root.console_run(
        "import time\nprint('first', flush=True)\ntime.sleep(2)\nprint('second')"
    )
    chunks, done, _, _ = remote.root.console_poll(run_id, 5.0)
    assert chunks == (("stdout", "first\n"),)
    assert done is False
    rest, result, traceback_text = poll_until_done(remote.root, run_id)
    assert rest == [("stdout", "second\n")]
    assert traceback_text == ""


def test_console_pid_is_the_server(remote):
    run_id = remote.root.console_run("import os; os.getpid()")
    _, result, _ = poll_until_done(remote.root, run_id)
    assert int(result) == remote.server.remote_pid


async def _finished(transfer, timeout: float = 60.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while transfer.state in ("queued", "running"):
        assert loop.time() < deadline, f"transfer still {transfer.state}"
        await asyncio.sleep(0.01)
    return transfer


def test_upload_cancel_leaves_no_file(remote, qloop, arun, tmp_path):
    from rpyc_explorer.transfers import CHUNK_SIZE, TransferQueue

    source = tmp_path / "blob"
    source.write_bytes(os.urandom(6 * CHUNK_SIZE))
    session = make_session(remote.server.connect())
    queue = TransferQueue(session)
    queue.changed.connect(lambda t: t.done >= CHUNK_SIZE and queue.cancel(t))
    target = remote.scratch + "/uploaded"
    try:
        transfer = arun(_finished(queue.upload(str(source), target)))
    finally:
        arun(session.close())
    assert transfer.state == "cancelled"
    assert remote.root.list_dir(remote.scratch, 0, PAGE, True, "name")[0] == ()


def test_download_is_atomic(remote, qloop, arun, tmp_path):
    from rpyc_explorer.transfers import CHUNK_SIZE, TransferQueue

    source = remote.scratch + "/data"
    remote.run(
        f"open({source!r}, 'wb').write(bytes(range(256)) * {3 * CHUNK_SIZE // 256})"
    )
    session = make_session(remote.server.connect())
    queue = TransferQueue(session)
    target = tmp_path / "data"
    early = []
    queue.changed.connect(
        lambda t: t.state == "running" and early.append(target.exists())
    )
    try:
        transfer = arun(_finished(queue.download(source, str(target))))
    finally:
        arun(session.close())
    assert transfer.state == "done"
    assert early and not any(early)
    assert target.read_bytes() == bytes(range(256)) * (3 * CHUNK_SIZE // 256)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert stat.S_ISREG(target.stat().st_mode)
