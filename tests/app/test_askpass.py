"""The askpass helper, run as a real subprocess, against the askpass server."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from rpyc_explorer import askpass_helper
from rpyc_explorer.machines.credentials import Secret
from rpyc_explorer.session.askpass import (
    OWNER_FILE,
    AskpassRequest,
    AskpassServer,
    SessionDir,
    classify_prompt,
    remove_stale_session_dirs,
)

ANSWER = "s3cret answer"


@pytest.fixture
def server():
    requests: list[AskpassRequest] = []
    replies: dict[str, Secret | None] = {}

    def answer(request: AskpassRequest) -> Secret | None:
        requests.append(request)
        return replies.get(request.kind, Secret(ANSWER))

    directory = SessionDir()
    askpass = AskpassServer(directory, answer)
    askpass.start()
    askpass.requests = requests
    askpass.replies = replies
    yield askpass
    askpass.stop()
    directory.remove()


def _run_wrapper(env: dict[str, str], prompt: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RPYC_")}
    full_env.update(env)
    return subprocess.run(
        [env["SSH_ASKPASS"], prompt],
        env=full_env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_helper_receives_answer(server):
    result = _run_wrapper(server.environment(), "user@host's password: ")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ANSWER + "\n"
    assert server.requests == [AskpassRequest("user@host's password: ", "password")]


def test_wrong_token_rejected(server):
    env = server.environment()
    env[askpass_helper.TOKEN_ENV] = "not-the-token"
    result = _run_wrapper(env, "Password: ")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "wrong token" in result.stderr
    assert server.requests == []
    assert server.rejected == 1


def test_declined_prompt_prints_nothing(server):
    server.replies["passphrase"] = None
    result = _run_wrapper(server.environment(), "Enter passphrase for key '/k': ")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "declined" in result.stderr


def test_missing_environment_fails():
    result = subprocess.run(
        [sys.executable, askpass_helper.__file__, "Password: "],
        env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert "must be set" in result.stderr


def test_session_dir_is_private(server):
    mode = stat.S_IMODE(server.directory.path.stat().st_mode)
    assert mode == 0o700
    assert stat.S_IMODE(server.socket_path.stat().st_mode) == 0o600
    assert ANSWER not in server.wrapper_path.read_text()


@pytest.mark.parametrize(
    ("prompt", "kind"),
    [
        ("user@host's password: ", "password"),
        ("(user@host) Password: ", "password"),
        ("Enter passphrase for key '/home/u/.ssh/id_ed25519': ", "passphrase"),
        ("Are you sure you want to continue connecting (yes/no)? ", "other"),
        ("Verification code: ", "other"),
    ],
)
def test_classify_prompt(prompt, kind):
    assert classify_prompt(prompt) == kind


def test_each_hop_has_own_token(server):
    jump_env = server.environment("jump")
    target_env = server.environment()
    assert jump_env[askpass_helper.TOKEN_ENV] != target_env[askpass_helper.TOKEN_ENV]
    result = _run_wrapper(jump_env, "user@jump's password: ")
    assert result.returncode == 0, result.stderr
    assert [r.hop for r in server.requests] == ["jump"]


def ended_pid() -> int:
    """Return the PID of a child process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def session_dir(base, name: str, pid: int | None, mode: int = 0o700):
    path = base / name
    path.mkdir()
    if pid is not None:
        (path / OWNER_FILE).write_text(f"{pid}\n")
    (path / "askpass").write_text("#!/bin/sh\n")
    path.chmod(mode)
    return path


def test_session_dir_records_owner(server):
    owner = server.directory.file(OWNER_FILE).read_text()
    assert int(owner) == os.getpid()


def test_remove_stale_session_dirs(tmp_path):
    dead = ended_pid()
    stale = session_dir(tmp_path, "rpyc-explorer-stale", dead)
    alive = session_dir(tmp_path, "rpyc-explorer-alive", os.getppid())
    no_owner = session_dir(tmp_path, "rpyc-explorer-smoke-x", None)
    loose = session_dir(tmp_path, "rpyc-explorer-loose", dead, mode=0o755)
    other_name = session_dir(tmp_path, "somebody-else", dead)
    link = tmp_path / "rpyc-explorer-link"
    link.symlink_to(other_name)

    assert remove_stale_session_dirs(tmp_path) == [stale]
    assert not stale.exists()
    for kept in (alive, no_owner, loose, other_name, link):
        assert kept.exists()
