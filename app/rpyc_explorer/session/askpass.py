"""The application side of SSH_ASKPASS: a Unix socket that replies to ssh's prompts.

Each session gets a private 0700 directory (`SessionDir`) holding the socket, the
wrapper script OpenSSH runs, the ControlMaster sockets and the accept-once
known_hosts file. Only a peer with our uid that presents the one-time token gets a
reply. The `answer` callback runs in the server's thread and may block while the
user types, because the controller marshals it to the asyncio loop.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import shlex
import shutil
import socket
import struct
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .. import askpass_helper
from ..machines.credentials import Secret

logger = logging.getLogger(__name__)

PromptKind = Literal["password", "passphrase", "other"]
_MAX_REQUEST = 65536
SESSION_DIR_PREFIX = "rpyc-explorer-"
# Holds the PID of the process that made a session directory, so a later start can
# remove the directories of a process that crashed.
OWNER_FILE = "owner.pid"
_REQUEST_TIMEOUT = 10.0


@dataclass(frozen=True)
class AskpassRequest:
    """One prompt from an ssh child process.

    Attributes:
        prompt: the prompt text OpenSSH passed (never a secret).
        kind: the kind of secret the prompt requests.
        hop: the label of the token the requesting process presented. It is
            "target" for the machine itself and "jump" for the ssh that reaches
            a jump host.
    """

    prompt: str
    kind: PromptKind
    hop: str = "target"


def classify_prompt(prompt: str) -> PromptKind:
    """Tell a key passphrase prompt from a password prompt; anything else is "other"."""
    text = prompt.lower()
    if "passphrase" in text:
        return "passphrase"
    if "password" in text:
        return "password"
    return "other"


AnswerFunction = Callable[[AskpassRequest], "Secret | None"]


class SessionDir:
    """A private temporary directory (mode 0700) for one session's ssh files."""

    def __init__(self, prefix: str = SESSION_DIR_PREFIX) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        os.chmod(self.path, 0o700)
        self.file(OWNER_FILE).write_text(f"{os.getpid()}\n", encoding="ascii")

    def file(self, name: str) -> Path:
        """Return the path of `name` inside the directory."""
        return self.path / name

    def remove(self) -> None:
        """Delete the directory and everything in it."""
        shutil.rmtree(self.path, ignore_errors=True)


def remove_stale_session_dirs(temp_dir: Path | None = None) -> list[Path]:
    """Delete the session directories left behind by processes that ended.

    Only directories named with our prefix, owned by this user, of mode 0700, not
    symbolic links, and holding the PID of a process that no longer runs are removed.

    Returns:
        The directories removed.
    """
    base = Path(temp_dir) if temp_dir is not None else Path(tempfile.gettempdir())
    removed = []
    try:
        candidates = [
            p for p in base.iterdir() if p.name.startswith(SESSION_DIR_PREFIX)
        ]
    except OSError as exc:
        logger.warning("askpass: cannot list %s for stale folders: %s", base, exc)
        return removed
    for path in candidates:
        owner = _dead_owner(path)
        if owner is not None:
            shutil.rmtree(path, ignore_errors=True)
            logger.info("askpass: removed %s left by ended process %d", path, owner)
            removed.append(path)
    return removed


def _dead_owner(path: Path) -> int | None:
    """Return the owner PID of a stale session directory, or None to keep it."""
    try:
        info = os.lstat(path)
        if not os.path.isdir(path) or os.path.islink(path):
            return None
        if info.st_uid != os.getuid() or info.st_mode & 0o777 != 0o700:
            return None
        pid = int(path.joinpath(OWNER_FILE).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    if pid <= 0 or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return pid
    except PermissionError:
        pass
    # NOTE: a PID reused by another process keeps its directory until that ends.
    return None


class AskpassServer:
    """Serves SSH_ASKPASS requests from this application's ssh children.

    Args:
        directory: the session's private directory.
        answer: callback run in the server thread for each authenticated
            request. It returns the secret, or None to decline.
    """

    def __init__(self, directory: SessionDir, answer: AnswerFunction) -> None:
        self.directory = directory
        self.socket_path = directory.file("askpass.sock")
        self.wrapper_path = directory.file("askpass")
        self._answer = answer
        self._tokens = {"target": secrets.token_urlsafe(32)}
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.rejected = 0

    def start(self) -> None:
        """Create the socket and wrapper script and start serving."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.socket_path))
        os.chmod(self.socket_path, 0o600)
        listener.listen(8)
        self._listener = listener
        self._write_wrapper()
        self._thread = threading.Thread(
            target=self._serve, name="askpass-server", daemon=True
        )
        self._thread.start()

    def environment(self, hop: str = "target") -> dict[str, str]:
        """Return the variables that make an ssh child prompt through this server.

        Each `hop` label gets its own token, so a request shows which ssh sent it.
        A token is not a secret of the user. It only proves that the requesting
        process was started by this application, and it ends with the session.
        """
        token = self._tokens.setdefault(hop, secrets.token_urlsafe(32))
        return {
            "SSH_ASKPASS": str(self.wrapper_path),
            "SSH_ASKPASS_REQUIRE": "force",
            askpass_helper.SOCKET_ENV: str(self.socket_path),
            askpass_helper.TOKEN_ENV: token,
        }

    def stop(self) -> None:
        """Stop serving and remove the socket."""
        self._stopping.set()
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
        if self._thread is not None:
            self._thread.join(5)
        self.socket_path.unlink(missing_ok=True)

    def _write_wrapper(self) -> None:
        # OpenSSH runs SSH_ASKPASS without arguments of our choosing, so a script
        # binds the interpreter and the helper path.
        if getattr(sys, "frozen", False):
            # A PyInstaller bundle has no interpreter to run the helper with; its
            # program runs the helper itself when given --askpass (see main.py).
            command = f"{shlex.quote(sys.executable)} --askpass"
        else:
            helper = Path(askpass_helper.__file__).resolve()
            command = f"{shlex.quote(sys.executable)} {shlex.quote(str(helper))}"
        script = f'#!/bin/sh\nexec {command} "$@"\n'
        self.wrapper_path.write_text(script)
        os.chmod(self.wrapper_path, 0o700)

    def _serve(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(
                target=self._handle, args=(conn,), name="askpass-request", daemon=True
            ).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            reply = self._reply_for(conn)
            try:
                conn.sendall(json.dumps(reply).encode())
            except OSError as exc:
                logger.warning("askpass: cannot send the reply: %s", exc)

    def _reply_for(self, conn: socket.socket) -> dict[str, object]:
        if not _peer_is_us(conn):
            self.rejected += 1
            logger.warning("askpass: rejected a request from another user")
            return {"ok": False, "error": "rejected: wrong user"}
        try:
            request = _read_request(conn)
        except (OSError, ValueError) as exc:
            self.rejected += 1
            logger.warning("askpass: invalid request: %s", exc)
            return {"ok": False, "error": "invalid request"}
        hop = self._hop_for(str(request.get("token", "")))
        if hop is None:
            self.rejected += 1
            logger.warning("askpass: rejected a request with a wrong token")
            return {"ok": False, "error": "rejected: wrong token"}
        prompt = str(request.get("prompt", ""))
        try:
            secret = self._answer(AskpassRequest(prompt, classify_prompt(prompt), hop))
        except Exception:  # noqa: BLE001 - declining is the safe answer
            logger.exception("askpass: the reply to prompt %r failed", prompt)
            secret = None
        if secret is None:
            return {"ok": False, "error": "declined"}
        return {"ok": True, "answer": secret.reveal()}

    def _hop_for(self, token: str) -> str | None:
        found = None
        for hop, expected in list(self._tokens.items()):
            # Compare with every token so the time taken does not reveal a match.
            if hmac.compare_digest(token.encode(), expected.encode()):
                found = hop
        return found


def _read_request(conn: socket.socket) -> dict[str, object]:
    conn.settimeout(_REQUEST_TIMEOUT)
    data = b""
    while len(data) <= _MAX_REQUEST:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    if len(data) > _MAX_REQUEST:
        raise ValueError(f"request longer than {_MAX_REQUEST} bytes")
    decoded = json.loads(data.decode())
    if not isinstance(decoded, dict):
        raise ValueError("request is not a JSON object")
    return decoded


def _peer_is_us(conn: socket.socket) -> bool:
    peercred = getattr(socket, "SO_PEERCRED", None)
    if peercred is None:
        # NOTE: without SO_PEERCRED (not Linux) only the 0700 directory and the
        # token keep other users out.
        return True
    data = conn.getsockopt(socket.SOL_SOCKET, peercred, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", data)
    return uid == os.getuid()
