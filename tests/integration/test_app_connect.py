"""The session controller against the throwaway sshd: host keys, askpass, deploy.

The qasync loop fixtures come from tests/app/conftest.py; the sshd fixture from
tests/integration/conftest.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import keyring.backends.null
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from rpyc_explorer.machines.credentials import SERVICE_NAME, CredentialStore, Secret
from rpyc_explorer.machines.known_hosts import KnownHosts
from rpyc_explorer.machines.record import Machine
from rpyc_explorer.session.controller import SessionController
from rpyc_explorer.session.phases import (
    AuthenticationFailedError,
    HostKeyChanged,
    HostKeyRejectedError,
    Phase,
)
from rpyc_explorer.session.prompts import HostKeyPrompt, SecretPrompt, SecretReply
from rpyc_explorer.session.ssh import pid_alive
from sshd import descendants


pytestmark = pytest.mark.ssh
CONNECT_TIMEOUT = 90


class FakeUser:
    """Answers the controller's prompts the way a user at the dialogs would."""

    def __init__(
        self,
        host_key: str = "accept-and-save",
        password: str | None = None,
        remember: bool = False,
    ) -> None:
        self.host_key = host_key
        self.password = password
        self.remember = remember
        self.host_key_prompts: list[HostKeyPrompt] = []
        self.secret_prompts: list[SecretPrompt] = []

    async def ask_host_key(self, prompt: HostKeyPrompt) -> str:
        self.host_key_prompts.append(prompt)
        return self.host_key

    async def ask_secret(self, prompt: SecretPrompt) -> SecretReply:
        self.secret_prompts.append(prompt)
        if self.password is None:
            return SecretReply(None)
        return SecretReply(Secret(self.password), self.remember)


@pytest.fixture
def secret_service():
    try:
        from keyring.backends import SecretService

        backend = SecretService.Keyring()
        backend.priority  # noqa: B018 - raises when no unlocked SecretService exists
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no unlocked SecretService on this bus: {exc}")
    return backend


def _controller(app_dirs, user: FakeUser, backend=None) -> SessionController:
    known = KnownHosts(app_dirs["data"] / "known_hosts", read_only_files=[])
    credentials = CredentialStore(backend or keyring.backends.null.Keyring())
    return SessionController(credentials, known, user.ask_host_key, user.ask_secret)


def _key_machine(server) -> Machine:
    return Machine.new(
        "loopback key",
        host=server.host,
        port=server.port,
        user=server.user,
        auth="key",
        key_path=server.key_path,
    )


def _password_machine(server) -> Machine:
    if server.password is None:
        pytest.skip("password login needs the tests to run as root")
    return Machine.new(
        "loopback password",
        host=server.host,
        port=server.port,
        user=server.user,
        auth="password",
    )


def _fingerprint(known_hosts: str) -> str:
    listing = subprocess.run(
        ["ssh-keygen", "-lf", known_hosts], capture_output=True, text=True, check=True
    ).stdout
    return listing.split()[1]


def _wait_until(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _session_processes(server) -> list[int]:
    """PIDs under sshd that serve sessions (the listener itself is excluded)."""
    return list(descendants(server.pid))


def test_key_login_deploys_and_cleans_up(sshd_server, app_dirs, arun):
    user = FakeUser()
    controller = _controller(app_dirs, user)
    machine = _key_machine(sshd_server)
    try:
        session = arun(controller.connect(machine), timeout=CONNECT_TIMEOUT)
        prompt = user.host_key_prompts[0]
        assert (prompt.host, prompt.port) == ("127.0.0.1", sshd_server.port)
        assert prompt.key_type == "ssh-ed25519"
        assert prompt.fingerprint == _fingerprint(sshd_server.known_hosts)
        assert not prompt.is_jump_host
        saved = (app_dirs["data"] / "known_hosts").read_text()
        assert saved.startswith(f"[127.0.0.1]:{sshd_server.port} ssh-ed25519 ")
        assert user.secret_prompts == []

        assert session.kind == "explorer"
        home = pwd.getpwnam(sshd_server.user).pw_dir
        assert arun(session.call("home")) == home

        attempt = session.deployment
        master_pid = attempt.links[0].master_pid
        ssh_pid = attempt.deployment.local_pid
        remote_pid = attempt.deployment.remote_pid
        session_dir = attempt.directory.path
        assert all(pid_alive(pid) for pid in (master_pid, ssh_pid, remote_pid))

        assert arun(controller.disconnect(machine.id), timeout=30) == []
        for pid in (master_pid, ssh_pid, remote_pid):
            assert not pid_alive(pid), f"process {pid} still runs after close"
        assert not session_dir.exists()
        assert _wait_until(lambda: _session_processes(sshd_server) == [])

        # The saved key is trusted from now on: no second prompt.
        arun(controller.connect(machine), timeout=CONNECT_TIMEOUT)
        assert len(user.host_key_prompts) == 1
    finally:
        assert arun(controller.close_all(), timeout=30) == {}


def test_accept_once_saves_nothing(sshd_server, app_dirs, arun):
    user = FakeUser(host_key="accept-once")
    controller = _controller(app_dirs, user)
    try:
        session = arun(
            controller.connect(_key_machine(sshd_server)), timeout=CONNECT_TIMEOUT
        )
        assert arun(session.call("eval", "2 + 2")) == 4
        assert not (app_dirs["data"] / "known_hosts").exists()
    finally:
        arun(controller.close_all(), timeout=30)


def test_host_key_cancel_stops(sshd_server, app_dirs, arun):
    user = FakeUser(host_key="cancel")
    controller = _controller(app_dirs, user)
    try:
        with pytest.raises(HostKeyRejectedError) as info:
            arun(controller.connect(_key_machine(sshd_server)), timeout=CONNECT_TIMEOUT)
        assert "was not accepted" in str(info.value)
        assert not (app_dirs["data"] / "known_hosts").exists()
        assert controller.sessions == {}
    finally:
        arun(controller.close_all(), timeout=30)


def test_changed_key_stops_before_authentication(sshd_server, app_dirs, arun):
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    old_line = public.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    (app_dirs["data"] / "known_hosts").write_text(
        f"[127.0.0.1]:{sshd_server.port} {old_line}\n"
    )
    sshd_log = Path(sshd_server.directory) / "sshd.log"
    accepted_before = sshd_log.read_text(errors="replace").count("Accepted ")
    user = FakeUser(password="unused")
    controller = _controller(app_dirs, user)
    try:
        with pytest.raises(HostKeyChanged) as info:
            arun(controller.connect(_key_machine(sshd_server)), timeout=CONNECT_TIMEOUT)
        error = info.value
        assert error.phase is Phase.CONNECTING
        assert "man-in-the-middle" in str(error)
        assert _fingerprint(sshd_server.known_hosts) in error.new_fingerprint
        assert len(error.old_fingerprints) == 1
        assert user.host_key_prompts == []
        assert user.secret_prompts == []
        assert (
            sshd_log.read_text(errors="replace").count("Accepted ") == accepted_before
        )

        result = controller.forget_host_key(error.host, error.port)
        assert result.removed == 1
        assert (app_dirs["data"] / "known_hosts").read_text() == ""
    finally:
        arun(controller.close_all(), timeout=30)


def test_password_remembered_only_on_request(
    sshd_server, app_dirs, arun, secret_service
):
    machine = _password_machine(sshd_server)
    username = f"{machine.id}/password"
    forgetful = FakeUser(password=sshd_server.password, remember=False)
    controller = _controller(app_dirs, forgetful, secret_service)
    try:
        session = arun(controller.connect(machine), timeout=CONNECT_TIMEOUT)
        assert arun(session.call("eval", "1")) == 1
        assert [p.kind for p in forgetful.secret_prompts] == ["password"]
        assert forgetful.secret_prompts[0].can_remember
        assert secret_service.get_password(SERVICE_NAME, username) is None
        arun(controller.close_all(), timeout=30)

        remembering = FakeUser(password=sshd_server.password, remember=True)
        controller = _controller(app_dirs, remembering, secret_service)
        arun(controller.connect(machine), timeout=CONNECT_TIMEOUT)
        assert (
            secret_service.get_password(SERVICE_NAME, username) == sshd_server.password
        )
        arun(controller.close_all(), timeout=30)

        # The remembered password is used without asking.
        silent = FakeUser(host_key="cancel", password=None)
        controller = _controller(app_dirs, silent, secret_service)
        arun(controller.connect(machine), timeout=CONNECT_TIMEOUT)
        assert silent.secret_prompts == []
    finally:
        arun(controller.close_all(), timeout=30)
        controller.forget_secret(machine.id)


def test_wrong_password_leaks_nowhere(
    sshd_server, app_dirs, arun, caplog, secret_service
):
    machine = _password_machine(sshd_server)
    wrong = "wrong-" + secrets.token_urlsafe(12)
    user = FakeUser(password=wrong, remember=True)
    controller = _controller(app_dirs, user, secret_service)
    lines: list[str] = []
    controller.log.connect(lambda mid, line: lines.append(line))
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(AuthenticationFailedError) as info:
            arun(controller.connect(machine), timeout=CONNECT_TIMEOUT)
        error = info.value
        expected = f"authentication failed for {sshd_server.user}@127.0.0.1 (password)"
        assert expected in str(error)
        assert not error.used_stored_secret

        texts = [str(error), repr(error), *lines]
        cause = error.__cause__ or error.__context__
        while cause is not None:
            texts += [str(cause), repr(cause)]
            cause = cause.__cause__ or cause.__context__
        texts += [record.getMessage() for record in caplog.records]
        texts += [repr(record.args) for record in caplog.records]
        assert not [text for text in texts if wrong in text]
        for path in Path(app_dirs["config"]).parent.rglob("*"):
            if path.is_file():
                assert wrong.encode() not in path.read_bytes(), path
        assert (
            secret_service.get_password(SERVICE_NAME, f"{machine.id}/password") is None
        )
    finally:
        arun(controller.close_all(), timeout=30)


def test_remembered_wrong_password_can_be_forgotten(
    sshd_server, app_dirs, arun, secret_service
):
    machine = _password_machine(sshd_server)
    secret_service.set_password(
        SERVICE_NAME, f"{machine.id}/password", "stale-password"
    )
    controller = _controller(app_dirs, FakeUser(), secret_service)
    try:
        with pytest.raises(AuthenticationFailedError) as info:
            arun(controller.connect(machine), timeout=CONNECT_TIMEOUT)
        assert info.value.used_stored_secret
        assert "forget it" in str(info.value)
        assert "stale-password" not in str(info.value)
        assert controller.forget_secret(machine.id)
        assert (
            secret_service.get_password(SERVICE_NAME, f"{machine.id}/password") is None
        )
    finally:
        arun(controller.close_all(), timeout=30)


# Interpreter overrides that stall a deploy so it can be cancelled midway. The probe
# call (`-S -c ...sys.exit...`) decides which phase stalls.
STALL_IN_STARTING = """#!/bin/sh
case "$*" in *sys.exit*) exec python3 "$@";; esac
# Swallow the upload and never start the server; exits at end of input.
exec python3 -c 'import sys; sys.stdin.buffer.read()'
"""
STALL_IN_PROBE = """#!/bin/sh
sleep 60
exec python3 "$@"
"""


@pytest.fixture
def stalling_python(request):
    """Write the stalling interpreter script named by the test's parameter.

    It lives outside pytest's 0700 temp tree so that the sshd test user can run it.
    """
    directory = Path(tempfile.mkdtemp(prefix="rpyc-stall-python-"))
    directory.chmod(0o755)
    script = directory / "python3"
    script.write_text(request.param)
    script.chmod(0o755)
    yield str(script)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize(
    ("stalling_python", "phase"),
    [
        pytest.param(STALL_IN_STARTING, Phase.STARTING, id="starting"),
        pytest.param(STALL_IN_PROBE, Phase.FINDING_PYTHON, id="probe"),
    ],
    indirect=["stalling_python"],
)
def test_cancel_during_deploy_leaves_nothing(
    sshd_server, app_dirs, qloop, arun, stalling_python, phase
):
    controller = _controller(app_dirs, FakeUser())
    machine = _key_machine(sshd_server).replace(python=stalling_python)
    reached = asyncio.Event()
    controller.phase_changed.connect(
        lambda mid, value, fraction, detail: (
            reached.set() if value == phase.value else None
        )
    )

    async def connect_then_cancel() -> tuple[list[int], list[int]]:
        task = asyncio.ensure_future(controller.connect(machine))
        await asyncio.wait_for(reached.wait(), CONNECT_TIMEOUT)
        # Wait until the remote side runs the stalling interpreter.
        for _ in range(200):
            if _stalled_pids(sshd_server):
                break
            await asyncio.sleep(0.05)
        stalled = _stalled_pids(sshd_server)
        seen = _session_processes(sshd_server)
        controller.cancel(machine.id)
        with pytest.raises(asyncio.CancelledError):
            await task
        return seen, stalled

    seen: list[int] = []
    try:
        seen, stalled = arun(connect_then_cancel(), timeout=CONNECT_TIMEOUT)
        assert stalled, "the stalling interpreter never ran on the server"
        assert _wait_until(lambda: not any(pid_alive(pid) for pid in seen)), [
            _command(pid) for pid in seen if pid_alive(pid)
        ]
        assert controller.sessions == {}
        ssh_children = [pid for pid in descendants(os.getpid()) if _is_ssh(pid)]
        assert ssh_children == []
    finally:
        arun(controller.close_all(), timeout=30)
        # The test started these through sshd; end any that a failure left behind.
        for pid in seen:
            if pid_alive(pid) and pid != sshd_server.pid:
                os.kill(pid, signal.SIGKILL)


def _stalled_pids(server) -> list[int]:
    markers = ("sleep", "python3 -c import sys; sys.stdin")
    return [
        pid for pid in _session_processes(server) if _command(pid).startswith(markers)
    ]


def _is_ssh(pid: int) -> bool:
    return _command(pid).split(" ")[0].endswith("ssh")


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_jump_host_key_checked_first(sshd_server, app_dirs, arun):
    """The loopback sshd serves as its own jump host (password on the jump hop)."""
    if sshd_server.password is None:
        pytest.skip("the jump hop logs in with the password, which needs root")
    user = FakeUser(password=sshd_server.password)
    controller = _controller(app_dirs, user)
    jump = f"{sshd_server.user}@127.0.0.1:{sshd_server.port}"
    machine = _key_machine(sshd_server).replace(jump_host=jump)
    try:
        session = arun(controller.connect(machine), timeout=CONNECT_TIMEOUT)
        assert arun(session.call("eval", "3 * 3")) == 9
        # Both hops present the same key here: the jump host is asked about first,
        # and once saved, the machine's own check finds it known.
        assert [p.is_jump_host for p in user.host_key_prompts] == [True]
        assert [(p.kind, p.is_jump_host) for p in user.secret_prompts] == [
            ("password", True)
        ]
        assert not user.secret_prompts[0].can_remember
        links = session.deployment.links
        assert [link.name for link in links] == ["target", "jump"]
        master_pids = [link.master_pid for link in links]
        assert all(pid_alive(pid) for pid in master_pids)

        assert arun(controller.disconnect(machine.id), timeout=30) == []
        assert not any(pid_alive(pid) for pid in master_pids)
    finally:
        arun(controller.close_all(), timeout=30)


def test_key_passphrase_asked_through_askpass(sshd_server, app_dirs, arun, tmp_path):
    protected = tmp_path / "protected_key"
    shutil.copy(sshd_server.key_path, protected)
    protected.chmod(0o600)
    passphrase = "phrase-" + secrets.token_urlsafe(8)
    subprocess.run(
        ["ssh-keygen", "-q", "-p", "-N", passphrase, "-f", str(protected)],
        check=True,
        capture_output=True,
    )
    user = FakeUser(password=passphrase)
    controller = _controller(app_dirs, user)
    machine = _key_machine(sshd_server).replace(key_path=str(protected))
    try:
        session = arun(controller.connect(machine), timeout=CONNECT_TIMEOUT)
        assert arun(session.call("eval", "'ok'")) == "ok"
        assert [p.kind for p in user.secret_prompts] == ["passphrase"]
        assert str(protected) in user.secret_prompts[0].prompt
        # The null keyring cannot store, so the dialog must not offer it.
        assert not user.secret_prompts[0].can_remember
    finally:
        arun(controller.close_all(), timeout=30)


def test_ssh_itself_rejects_unapproved_key(sshd_server, tmp_path):
    """Even if the app's own check were skipped, ssh refuses a key nobody approved."""
    from rpyc_explorer.session.askpass import SessionDir
    from rpyc_explorer.session.ssh import SshCommandError, SshLink

    read_only = tmp_path / "user_known_hosts"
    read_only.write_text("")
    directory = SessionDir()
    try:
        link = SshLink(
            _key_machine(sshd_server),
            directory,
            [tmp_path / "app_known_hosts", read_only],
            {},
        )
        with pytest.raises(SshCommandError) as info:
            link.open_master(timeout=30)
        assert "Host key verification failed" in info.value.stderr
        assert read_only.read_text() == ""
        assert not (tmp_path / "app_known_hosts").exists()
        assert link.check_master() is None
    finally:
        directory.remove()
