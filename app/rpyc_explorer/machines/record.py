"""The `Machine` record: one target the application can connect to.

A record holds only connection facts. Passwords and passphrases never live here:
they are in the OS keyring (see `credentials.py`), keyed by the machine id.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["local", "ssh", "rpyc"]
Auth = Literal["agent", "key", "password"]

KINDS: tuple[str, ...] = ("local", "ssh", "rpyc")
AUTH_METHODS: tuple[str, ...] = ("agent", "key", "password")
LOCAL_ID = "local"
DEFAULT_SSH_PORT = 22
# Stock rpyc's default ports: 18812 for plain TCP, 18821 for TLS.
DEFAULT_RPYC_PORT = 18812
DEFAULT_RPYC_TLS_PORT = 18821


class InvalidMachineError(ValueError):
    """Raised when a field of a machine record has an invalid value.

    Attributes:
        field: the name of the offending field.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Machine:
    """One machine: this computer, an SSH host to deploy onto, or an rpyc server.

    Attributes:
        id: stable identifier (uuid4 hex; "local" for this computer). Keyring
            entries and known-host decisions are keyed by it, so it never changes.
        name: display name in the machine list; names need not be unique.
        kind: "local" (deploy through a local subprocess), "ssh" (deploy over
            SSH) or "rpyc" (connect to a running rpyc server, no deploy).
        host: host name or address; for kind "ssh" it may be an alias that
            OpenSSH resolves through `~/.ssh/config`.
        port: TCP port; None means the kind's default.
        user: SSH user name; empty means OpenSSH's default.
        auth: SSH authentication: "agent", "key" (key_path, optional
            passphrase in the keyring) or "password" (in the keyring or asked).
        key_path: private key file for auth "key".
        jump_host: OpenSSH ProxyJump value, `[user@]host[:port]`.
        python: remote interpreter override; empty means "find one".
        group: free-form group name for the machine list.
        rpyc_tls: connect to the rpyc server over TLS.
        rpyc_certfile: client certificate file for TLS.
        rpyc_keyfile: client private key file for TLS.
        rpyc_ca_certs: CA bundle that verifies the server for TLS.
        rpyc_classic: the rpyc server runs the classic (slave) service.
        managed: comes from the site configuration; the user cannot edit or
            remove it.
    """

    id: str
    name: str
    kind: Kind = "ssh"
    host: str = ""
    port: int | None = None
    user: str = ""
    auth: Auth = "agent"
    key_path: str = ""
    jump_host: str = ""
    python: str = ""
    group: str = ""
    rpyc_tls: bool = False
    rpyc_certfile: str = ""
    rpyc_keyfile: str = ""
    rpyc_ca_certs: str = ""
    rpyc_classic: bool = True
    managed: bool = False

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def new(cls, name: str, kind: Kind = "ssh", **fields: Any) -> Machine:
        """Create a record with a fresh uuid4 id."""
        return cls(id=uuid.uuid4().hex, name=name, kind=kind, **fields)

    @classmethod
    def this_computer(cls, python: str = "") -> Machine:
        """Return the built-in "This computer" entry (kind "local", id "local")."""
        return cls(id=LOCAL_ID, name="This computer", kind="local", python=python)

    @property
    def is_builtin(self) -> bool:
        """True for the built-in "This computer" entry."""
        return self.id == LOCAL_ID

    @property
    def editable(self) -> bool:
        """True when the user may edit or remove this machine."""
        return not (self.managed or self.is_builtin)

    @property
    def effective_port(self) -> int:
        """The port to connect to, with the kind's default filled in."""
        if self.port is not None:
            return self.port
        if self.kind == "rpyc":
            return DEFAULT_RPYC_TLS_PORT if self.rpyc_tls else DEFAULT_RPYC_PORT
        return DEFAULT_SSH_PORT

    @property
    def target(self) -> str:
        """A short `user@host:port` label for logs and messages."""
        if self.kind == "local":
            return "this computer"
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.host}:{self.effective_port}"

    def replace(self, **changes: Any) -> Machine:
        """Return a copy with `changes` applied (validated like a new record)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields that differ from their defaults, for TOML.

        `managed` is never written: managed machines come from the site
        configuration on every start.
        """
        data: dict[str, Any] = {"id": self.id, "name": self.name, "kind": self.kind}
        for field in dataclasses.fields(self):
            if field.name in data or field.name == "managed":
                continue
            value = getattr(self, field.name)
            if value != field.default:
                data[field.name] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], managed: bool = False) -> Machine:
        """Build a record from a TOML table.

        Raises:
            InvalidMachineError: a field is unknown, missing or has a wrong
                type or value; `field` names it.
        """
        known = {f.name for f in dataclasses.fields(cls)} - {"managed"}
        for key in data:
            if key not in known:
                raise InvalidMachineError(
                    key, f"unknown field {key!r}; expected one of {sorted(known)}"
                )
        for key in ("id", "name"):
            if key not in data:
                raise InvalidMachineError(key, f"missing field {key!r}")
        return cls(**data, managed=managed)


_STRING_FIELDS = (
    "id", "name", "host", "user", "key_path", "jump_host", "python", "group",
    "rpyc_certfile", "rpyc_keyfile", "rpyc_ca_certs",
)  # fmt: skip


def validate(machine: Machine) -> None:
    """Check every field of `machine`.

    Raises:
        InvalidMachineError: on the first invalid field.
    """
    for name in _STRING_FIELDS:
        value = getattr(machine, name)
        if not isinstance(value, str):
            raise InvalidMachineError(
                name, f"{name} must be a string, not {type(value).__name__}"
            )
    for name in ("rpyc_tls", "rpyc_classic", "managed"):
        if not isinstance(getattr(machine, name), bool):
            raise InvalidMachineError(name, f"{name} must be true or false")
    if not machine.id:
        raise InvalidMachineError("id", "id must not be empty")
    if not machine.name.strip():
        raise InvalidMachineError("name", "name must not be empty")
    if machine.kind not in KINDS:
        raise InvalidMachineError(
            "kind", f"kind {machine.kind!r} is invalid; expected one of {KINDS}"
        )
    if machine.auth not in AUTH_METHODS:
        raise InvalidMachineError(
            "auth", f"auth {machine.auth!r} is invalid; expected one of {AUTH_METHODS}"
        )
    _validate_port(machine.port)
    if machine.kind in ("ssh", "rpyc") and not machine.host.strip():
        raise InvalidMachineError("host", f"a {machine.kind} machine needs a host")
    if machine.kind == "ssh" and machine.auth == "key" and not machine.key_path:
        raise InvalidMachineError("key_path", "auth 'key' needs a key file")
    _validate_no_option_injection(machine)


def _validate_port(port: object) -> None:
    if port is None:
        return
    if isinstance(port, bool) or not isinstance(port, int):
        raise InvalidMachineError("port", f"port must be an integer, not {port!r}")
    if not 1 <= port <= 65535:
        raise InvalidMachineError("port", f"port {port} is out of range 1-65535")


def _validate_no_option_injection(machine: Machine) -> None:
    # These values go on the ssh command line. A leading "-" would be read as an
    # option, and whitespace would split one value into several.
    for name in ("host", "user", "jump_host"):
        value = getattr(machine, name)
        if value.startswith("-") or any(c.isspace() for c in value):
            raise InvalidMachineError(
                name, f"{name} {value!r} must not start with '-' or contain spaces"
            )
