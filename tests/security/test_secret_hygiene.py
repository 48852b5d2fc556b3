"""A password login leaves its secret only in the keyring.

The run connects a password-authenticated machine to the loopback sshd through
`SessionController` (host key prompt, askpass, deploy, explorer calls), with the
password typed into the controller's prompt callback and remembered in the real
SecretService keyring. Meanwhile and afterwards the test looks for the password in:

* every log record of every logger, captured at DEBUG, with its traceback;
* the text of every exception raised on the main thread or on a thread started during
  the run (a trace function records each one);
* every file under the app's config, data, cache and state dirs (machines TOML, known
  hosts, console history, an exported log) and every file created under the temp dir;
* the command line and environment of every process descended from this one (the ssh
  clients, askpass helpers, the sshd's session processes and the deployed server),
  sampled every 20 ms while the run lasts;
* the askpass replies: each reply that carries the secret must go to a process that
  descends from this one.

Run it inside a private D-Bus session with an unlocked gnome-keyring::

    dbus-run-session -- sh -c 'printf %s pw | gnome-keyring-daemon --unlock \
        --components=secrets >/dev/null; python3 -m pytest tests/security -q'

The daemon keeps its keyrings in ``$XDG_DATA_HOME/keyrings``; when a login keyring with
another password is already there, it stays locked and the tests skip. Give the daemon
an empty ``XDG_DATA_HOME`` then.

Without an unlocked SecretService, or without root (password login needs the sshd's
dedicated test user), the tests skip.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
import socket
import struct
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

# Qt runs offscreen unless the caller chose a platform (before any Qt import).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for sshd.py

from sshd import sshd_server as _sshd_fixture  # noqa: E402, F401  (named "sshd_server")

pytestmark = [pytest.mark.ssh, pytest.mark.timeout(180)]

CONNECT_TIMEOUT = 90
SAMPLE_INTERVAL = 0.02
MAX_SCANNED_FILE = 16 * 1024 * 1024


# -- evidence collectors ---------------------------------------------------------------


def _descendants(root: int) -> set:
    children: dict = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found: set = set()
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _files_under(root: Path) -> Iterator[Path]:
    for directory, _dirs, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            if path.is_file() and not path.is_symlink():
                yield path


class Sampler:
    """Samples /proc and new temp files on a thread, looking for ``secret``."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.hits: set[str] = set()
        self.commands: dict[int, str] = {}
        self.files_seen: set[str] = set()
        self._temp_before = set(os.listdir(tempfile.gettempdir()))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="secret sampler")

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._thread.join(10)
        self.sample()  # one more look at what is left

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            self.sample()

    def sample(self) -> None:
        """Check every descendant process and every new temp file once."""
        for pid in _descendants(os.getpid()):
            cmdline = _read(f"/proc/{pid}/cmdline")
            environ = _read(f"/proc/{pid}/environ")
            if cmdline:
                self.commands.setdefault(
                    pid, cmdline.split(b"\0")[0].decode(errors="replace")
                )
            if self.secret in cmdline:
                self.hits.add(f"cmdline of pid {pid}: {cmdline[:120]!r}")
            if self.secret in environ:
                self.hits.add(f"environment of pid {pid} ({self.commands.get(pid)})")
        temp = Path(tempfile.gettempdir())
        for name in set(os.listdir(temp)) - self._temp_before:
            entry = temp / name
            paths = _files_under(entry) if entry.is_dir() else [entry]
            for path in paths:
                self.scan_file(path)

    def scan_file(self, path: Path) -> None:
        """Record ``path`` as seen, and a hit when it contains the secret."""
        try:
            if not path.is_file() or path.stat().st_size > MAX_SCANNED_FILE:
                return
        except OSError:
            return
        self.files_seen.add(str(path))
        if self.secret in _read(str(path)):
            self.hits.add(f"file {path}")


class ExceptionTrace:
    """Records the text of every exception raised in Python code while it is active.

    It covers the thread that enters it and threads started afterwards; threads that
    were already running are not traced.
    """

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._lock = threading.Lock()

    def _local(self, frame: Any, event: str, arg: Any) -> Callable | None:
        if event == "exception":
            exc = arg[1]
            try:
                text = f"{type(exc).__name__}: {exc} {exc.args!r}"
            except Exception:  # noqa: BLE001 - an unprintable exception is skipped
                return self._local
            with self._lock:
                self.texts.append(text)
        return self._local

    def _global(self, frame: Any, event: str, arg: Any) -> Callable | None:
        if event == "call":
            frame.f_trace_lines = False
            return self._local
        return None

    def __enter__(self) -> ExceptionTrace:
        self._previous = (sys.gettrace(), threading.gettrace())
        threading.settrace(self._global)
        sys.settrace(self._global)
        # settrace covers frames called from now on; the caller's frame is running.
        caller = sys._getframe(1)
        caller.f_trace_lines = False
        caller.f_trace = self._local
        return self

    def __exit__(self, *exc_info: Any) -> None:
        sys.settrace(self._previous[0])
        threading.settrace(self._previous[1])  # type: ignore[arg-type]


class RecordCollector(logging.Handler):
    """Keeps every record as formatted text, traceback included."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record) + " " + repr(record.args))


@pytest.fixture
def all_records() -> Iterator[RecordCollector]:
    """Capture every logger's records at DEBUG for the test's duration."""
    collector = RecordCollector()
    root = logging.getLogger()
    loggers = [root] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    levels = {logger: logger.level for logger in loggers}
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    root.addHandler(collector)
    yield collector
    root.removeHandler(collector)
    for logger, level in levels.items():
        logger.setLevel(level)


@pytest.fixture(autouse=True)
def main_thread_gc() -> Iterator[None]:
    """Collect garbage on the main thread after each test, once its loop is closed.

    Qt objects of a test sit in reference cycles. Freed later by the cyclic collector
    on another thread, a QObject with a timer dies outside its thread and a later
    event loop crashes on it.
    """
    yield
    gc.collect()


# -- the app under test ----------------------------------------------------------------


@pytest.fixture
def secret_service():
    try:
        from keyring.backends import SecretService

        backend = SecretService.Keyring()
        backend.priority  # noqa: B018 - raises when no unlocked SecretService exists
        # A login keyring left by an earlier daemon with another password stays locked.
        backend.set_password("rpyc-explorer-hygiene-probe", "probe", "probe")
        backend.delete_password("rpyc-explorer-hygiene-probe", "probe")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(
            f"no usable SecretService on this D-Bus session ({type(exc).__name__}: "
            f"{exc}); start gnome-keyring-daemon --unlock with XDG_DATA_HOME set to "
            "an empty directory"
        )
    return backend


@pytest.fixture
def app_dirs(tmp_path, monkeypatch) -> dict[str, Path]:
    """The app's config and data dirs, and the XDG dirs, in a temporary folder."""
    dirs = {}
    for name in ("config", "data", "cache", "state"):
        dirs[name] = tmp_path / name
        dirs[name].mkdir()
        monkeypatch.setenv(f"XDG_{name.upper()}_HOME", str(dirs[name]))
    monkeypatch.setenv("RPYC_EXPLORER_CONFIG_DIR", str(dirs["config"]))
    monkeypatch.setenv("RPYC_EXPLORER_DATA_DIR", str(dirs["data"]))
    return dirs


@pytest.fixture
def qloop(qapp) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync event loop on the test QApplication, closed after the test."""
    import qasync
    from rpyc_explorer.app import close_loop

    qapp.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    yield loop
    close_loop(loop)


class AskpassSpy:
    """Wraps AskpassServer._reply_for to record which process got each secret reply."""

    def __init__(self, monkeypatch) -> None:
        from rpyc_explorer.session.askpass import AskpassServer

        self.receivers: list[tuple[int, list[int]]] = []
        original = AskpassServer._reply_for
        spy = self

        def reply_for(server: Any, conn: socket.socket) -> dict:
            reply = original(server, conn)
            if reply.get("ok"):
                data = conn.getsockopt(
                    socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
                )
                pid = struct.unpack("3i", data)[0]
                spy.receivers.append((pid, _ancestors(pid)))
            return reply

        monkeypatch.setattr(AskpassServer, "_reply_for", reply_for)


def _ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                pid = int(stat.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError):
            break
        chain.append(pid)
    return chain


class TypingUser:
    """Answers the controller's prompts as a user would: accept, type, remember."""

    def __init__(self, password: str) -> None:
        self.password = password
        self.secret_prompts: list[Any] = []

    async def ask_host_key(self, prompt: Any) -> str:
        return "accept-and-save"

    async def ask_secret(self, prompt: Any) -> Any:
        from rpyc_explorer.machines.credentials import Secret
        from rpyc_explorer.session.prompts import SecretReply

        self.secret_prompts.append(prompt)
        return SecretReply(Secret(self.password), True)


def _setup_app(server: Any, dirs: dict[str, Path], backend: Any, password: str):
    from rpyc_explorer.machines.credentials import CredentialStore
    from rpyc_explorer.machines.known_hosts import KnownHosts
    from rpyc_explorer.machines.record import Machine
    from rpyc_explorer.machines.store import MachineStore
    from rpyc_explorer.session.controller import SessionController

    if server.password is None:
        pytest.skip("password login needs the tests to run as root")
    machine = Machine.new("hygiene", host=server.host, port=server.port,
                          user=server.user, auth="password")  # fmt: skip
    MachineStore(dirs["config"]).add(machine)
    user = TypingUser(password)
    controller = SessionController(
        CredentialStore(backend),
        KnownHosts(dirs["data"] / "known_hosts", read_only_files=[]),
        user.ask_host_key,
        user.ask_secret,
    )
    return machine, user, controller


def _leaks(secret: str, texts: list[str]) -> list[str]:
    return [text[:200] for text in texts if secret in text]


def _exception_chain(error: BaseException) -> list[str]:
    texts = []
    seen: BaseException | None = error
    while seen is not None:
        texts += [str(seen), repr(seen)]
        seen = seen.__cause__ or seen.__context__
    return texts


def _scan_dirs(sampler: Sampler, dirs: list[Path]) -> None:
    for directory in dirs:
        for path in _files_under(directory):
            sampler.scan_file(path)


# -- the tests -------------------------------------------------------------------------


def test_password_only_in_keyring(
    sshd_server, app_dirs, qloop, qtbot, secret_service, all_records, monkeypatch
):
    """A remembered password login: the secret is in the keyring and nowhere else."""
    from rpyc_explorer.machines.credentials import SERVICE_NAME
    from rpyc_explorer.widgets.console_history import History, history_path
    from rpyc_explorer.widgets.log_pane import LogPane, QtLogHandler

    password = sshd_server.password
    machine, user, controller = _setup_app(
        sshd_server, app_dirs, secret_service, password
    )
    spy = AskpassSpy(monkeypatch)
    pane = LogPane()
    qtbot.addWidget(pane)
    pane_handler = QtLogHandler(logging.DEBUG)
    pane.attach(pane_handler)
    logging.getLogger().addHandler(pane_handler)
    signal_lines: list[str] = []
    controller.log.connect(lambda _machine_id, line: signal_lines.append(line))
    username = f"{machine.id}/password"
    errors: list[BaseException] = []
    try:
        with Sampler(password.encode()) as sampler, ExceptionTrace() as trace:
            try:
                session = qloop.run_until_complete(
                    asyncio.wait_for(controller.connect(machine), CONNECT_TIMEOUT)
                )
                home = qloop.run_until_complete(session.call("home"))
                listing = qloop.run_until_complete(session.call("list_dir", home))
                History(history_path(app_dirs["data"], machine.id)).add("home()")
                problems = qloop.run_until_complete(
                    asyncio.wait_for(controller.disconnect(machine.id), 30)
                )
            except BaseException as exc:  # its text is scanned below, then re-raised
                errors.append(exc)
                raise
            finally:
                qloop.run_until_complete(asyncio.wait_for(controller.close_all(), 30))
        qtbot.waitUntil(lambda: len(pane.visible_lines()) > 0, timeout=5000)
        pane.export_to(app_dirs["data"] / "exported.log")
        stored = secret_service.get_password(SERVICE_NAME, username)
    finally:
        logging.getLogger().removeHandler(pane_handler)
        controller.forget_secret(machine.id)
    _scan_dirs(sampler, [*app_dirs.values(), Path(sshd_server.directory)])

    assert problems == []
    assert listing is not None
    assert [prompt.kind for prompt in user.secret_prompts] == ["password"]
    assert stored == password
    # The collectors saw the run, so their silence means something.
    assert "ssh" in {Path(command).name for command in sampler.commands.values()}
    assert (app_dirs["config"] / "machines.toml").exists()
    assert (app_dirs["data"] / "known_hosts").exists()
    assert any(path.endswith("exported.log") for path in sampler.files_seen)
    assert any("history" in path for path in sampler.files_seen)
    assert len(all_records.texts) > 0
    assert len(trace.texts) > 0
    assert spy.receivers, "no askpass reply carried the password"

    assert sampler.hits == set()
    assert _leaks(password, list(os.environ.values())) == []
    assert _leaks(password, all_records.texts) == []
    assert _leaks(password, signal_lines) == []
    assert _leaks(password, pane.visible_lines()) == []
    assert _leaks(password, trace.texts) == []
    assert (
        _leaks(password, [text for error in errors for text in _exception_chain(error)])
        == []
    )
    for pid, ancestors in spy.receivers:
        assert os.getpid() in ancestors, (
            f"askpass reply went to pid {pid} outside this run"
        )


def test_wrong_password_leaks_nowhere(
    sshd_server, app_dirs, qloop, secret_service, all_records, monkeypatch
):
    """A wrong password: a clear authentication error, and the guess is kept nowhere."""
    from rpyc_explorer.machines.credentials import SERVICE_NAME
    from rpyc_explorer.session.phases import AuthenticationFailedError

    wrong = "wrong-" + secrets.token_urlsafe(16)
    machine, user, controller = _setup_app(sshd_server, app_dirs, secret_service, wrong)
    spy = AskpassSpy(monkeypatch)
    try:
        with Sampler(wrong.encode()) as sampler, ExceptionTrace() as trace:
            with pytest.raises(AuthenticationFailedError) as raised:
                qloop.run_until_complete(
                    asyncio.wait_for(controller.connect(machine), CONNECT_TIMEOUT)
                )
            qloop.run_until_complete(asyncio.wait_for(controller.close_all(), 30))
        stored = secret_service.get_password(SERVICE_NAME, f"{machine.id}/password")
    finally:
        controller.forget_secret(machine.id)
    _scan_dirs(sampler, [*app_dirs.values(), Path(sshd_server.directory)])

    message = str(raised.value)
    assert (
        f"authentication failed for {sshd_server.user}@127.0.0.1 (password)" in message
    )
    assert not raised.value.used_stored_secret
    assert stored is None
    lowered = [text.lower() for text in all_records.texts]
    assert any("authentication failed" in text for text in lowered)
    assert spy.receivers, "the wrong password never reached ssh, so nothing was tested"

    assert sampler.hits == set()
    assert _leaks(wrong, all_records.texts) == []
    assert _leaks(wrong, _exception_chain(raised.value)) == []
    assert _leaks(wrong, trace.texts) == []
    for pid, ancestors in spy.receivers:
        assert os.getpid() in ancestors, (
            f"askpass reply went to pid {pid} outside this run"
        )
