"""The steps of a connect, used by `SessionController`.

Blocking functions here run in the controller's worker threads; `prepare_ssh` is
a coroutine because it prompts the user about host keys between blocking steps.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..machines.known_hosts import (
    HostKeyChangedError,
    HostKeyFetchError,
    HostKeyStatus,
    fetch_host_key,
)
from ..machines.record import Machine
from .askpass import AskpassServer, SessionDir
from .attempt import Attempt
from .logs import weak_method
from .phases import (
    AuthenticationFailedError,
    HostKeyChanged,
    HostKeyRejectedError,
    Phase,
    SessionError,
)
from .prompts import HostKeyDecision, HostKeyPrompt
from .remote import detect_kind
from .ssh import JumpHost, SshCommandError, SshLink, SshNotFoundError

if TYPE_CHECKING:
    from .controller import SessionController

logger = logging.getLogger(__name__)

Report = Callable[[str, Phase, "float | None", str], None]
HOST_KEY_TIMEOUT = 15.0
_CONNECT_FAILURES = (
    "Connection refused",
    "Connection timed out",
    "Could not resolve hostname",
    "No route to host",
    "Network is unreachable",
    "Connection closed by",
    "Connection reset",
    "kex_exchange_identification",
)

__all__ = ["connect_rpyc", "deploy", "detect_kind", "prepare_ssh", "target_machine"]


# -- SSH: resolve, host keys, authentication ------------------------------------------


async def prepare_ssh(controller: SessionController, attempt: Attempt) -> None:
    """Check host keys and authenticate once; leaves ControlMasters running."""
    machine = attempt.machine
    controller.report(machine.id, Phase.CONNECTING, None, machine.target)
    attempt.directory = SessionDir()
    answer = weak_method(controller.answer_prompt)
    attempt.askpass = AskpassServer(
        attempt.directory, lambda request: answer(attempt, request)
    )
    attempt.askpass.start()
    known_files = controller.known_hosts.ssh_files(_once_file(attempt))
    link = SshLink(
        machine, attempt.directory, known_files, attempt.askpass.environment()
    )
    resolved = await controller.run_step(attempt, _resolve, link, machine.name)

    jump_spec = machine.jump_host or resolved.proxy_jump
    proxy_argv = None
    if jump_spec:
        jump = _jump_link(attempt, jump_spec, known_files)
        link.jump = jump
        jump_target = await controller.run_step(attempt, _resolve, jump, machine.name)
        await _verify_host_key(
            controller, attempt, jump_target.hostname, jump_target.port, True
        )
        controller.report(
            machine.id, Phase.AUTHENTICATING, None, f"jump host {jump_spec}"
        )
        await controller.run_step(
            attempt, _authenticate, attempt, jump, jump_target.user
        )
        attempt.links.append(jump)
        proxy_argv = jump.argv_for_forward(resolved.hostname, resolved.port)

    await _verify_host_key(
        controller, attempt, resolved.hostname, resolved.port, False, proxy_argv
    )
    controller.report(
        machine.id, Phase.AUTHENTICATING, None, f"{resolved.user}@{resolved.hostname}"
    )
    attempt.links.insert(0, link)
    await controller.run_step(attempt, _authenticate, attempt, link, resolved.user)
    attempt.log.info("authenticated as %s (%s)", resolved.user, machine.auth)
    for kind, secret in attempt.pending_remember.items():
        stored = await controller.run_step(
            attempt, controller.credentials.set, machine.id, kind, secret
        )
        if stored:
            attempt.log.info("remembered the %s in the keyring", kind)
    attempt.pending_remember.clear()


def _once_file(attempt: Attempt) -> Path:
    assert attempt.directory is not None
    return attempt.directory.file("known_hosts.once")


def _jump_link(attempt: Attempt, spec: str, known_files: list[Path]) -> SshLink:
    assert attempt.directory is not None and attempt.askpass is not None
    try:
        hop = JumpHost.parse(spec)
        record = Machine(
            id=f"{attempt.machine.id}-jump",
            name=f"{attempt.machine.name} (jump host)",
            host=hop.host,
            port=hop.port,
            user=hop.user,
            jump_host=hop.rest,
        )
    except ValueError as exc:
        raise SessionError(
            attempt.machine.name,
            Phase.CONNECTING,
            f"invalid jump host {spec!r}: {exc}",
            "Use the form [user@]host[:port]",
        ) from exc
    # NOTE: only the first hop of a ProxyJump chain is checked here; later hops
    # are left to ssh's own StrictHostKeyChecking against the same files.
    return SshLink(
        record,
        attempt.directory,
        known_files,
        attempt.askpass.environment("jump"),
        name="jump",
        restrict_auth=False,
    )


def _resolve(link: SshLink, machine_name: str) -> Any:
    try:
        return link.resolve()
    except SshNotFoundError as exc:
        raise SessionError(
            machine_name,
            Phase.CONNECTING,
            f"the OpenSSH client is not installed or not found on PATH: {exc}",
            "Install the OpenSSH client (Debian/Ubuntu: sudo apt-get install "
            "openssh-client; Fedora: openssh-clients) and make sure `ssh` is on "
            "the PATH this program was started with",
        ) from exc
    except SshCommandError as exc:
        raise SessionError(
            machine_name,
            Phase.CONNECTING,
            f"ssh cannot read the configuration for {link.machine.host!r}: "
            f"{exc.stderr or exc}",
            "Check ~/.ssh/config",
        ) from exc


async def _verify_host_key(
    controller: SessionController,
    attempt: Attempt,
    host: str,
    port: int,
    is_jump: bool,
    proxy_argv: list[str] | None = None,
) -> None:
    # NOTE: keys are looked up and saved under the HostName that `ssh -G` reports.
    # A HostKeyAlias in ~/.ssh/config makes ssh look under the alias instead, so
    # ssh then rejects the login with "Host key verification failed".
    machine = attempt.machine
    known = controller.known_hosts
    once = [_once_file(attempt)]
    known_types = [k.key.key_type for k in known.known_keys(host, port, once)]
    try:
        key = await controller.run_step(
            attempt,
            fetch_host_key,
            host,
            port,
            HOST_KEY_TIMEOUT,
            known_types,
            proxy_argv,
        )
    except HostKeyFetchError as exc:
        raise SessionError(machine.name, Phase.CONNECTING, str(exc)) from exc
    check = known.check(host, port, key, once)
    if check.status is HostKeyStatus.KNOWN:
        attempt.log.info("host key of %s:%s matches (%s)", host, port, key.fingerprint)
        return
    if check.status is HostKeyStatus.CHANGED:
        raise HostKeyChanged(
            machine.name, HostKeyChangedError(host, port, key, check.known)
        )
    prompt = HostKeyPrompt(machine, host, port, key.key_type, key.fingerprint, is_jump)
    decision = HostKeyDecision.of(await controller.ask_host_key(prompt))
    if decision is HostKeyDecision.ACCEPT_AND_SAVE:
        known.save(host, port, key)
    elif decision is HostKeyDecision.ACCEPT_ONCE:
        known.save(host, port, key, file=once[0])
        attempt.log.info(
            "accepted the host key of %s:%s for this session only", host, port
        )
    else:
        raise HostKeyRejectedError(
            machine.name,
            Phase.CONNECTING,
            f"the host key {key.fingerprint} of {host}:{port} was not accepted",
            "Connect again and accept the key once you have checked its fingerprint",
        )


def _authenticate(attempt: Attempt, link: SshLink, user: str) -> None:
    try:
        link.open_master()
    except SshCommandError as exc:
        raise _ssh_failure(attempt, link, user, exc) from None


def _ssh_failure(
    attempt: Attempt, link: SshLink, user: str, exc: SshCommandError
) -> SessionError:
    name = attempt.machine.name
    where = f"{user}@{link.machine.host}" if user else link.machine.host
    stderr = exc.stderr
    last = stderr.splitlines()[-1] if stderr else str(exc)
    if attempt.cancel_event.is_set():
        return SessionError(name, Phase.AUTHENTICATING, "cancelled")
    if "Permission denied" in stderr or "Too many authentication failures" in stderr:
        if attempt.prompt_cancelled:
            return SessionError(
                name,
                Phase.AUTHENTICATING,
                f"the password prompt for {where} was cancelled",
                "Connect again to enter it",
            )
        method = link.machine.auth if link.restrict_auth else "any method"
        return AuthenticationFailedError(
            name,
            f"authentication failed for {where} ({method})",
            _auth_hint(link.machine, attempt.used_stored_secret),
            attempt.used_stored_secret,
        )
    if (
        "Host key verification failed" in stderr
        or "HOST IDENTIFICATION HAS CHANGED" in stderr
    ):
        return HostKeyRejectedError(
            name,
            Phase.CONNECTING,
            f"ssh rejected the host key of {link.machine.host}: {last}",
            "A host behind a jump host chain may have an unknown key; connect to it "
            "directly once, or add its key to ~/.ssh/known_hosts",
        )
    if any(marker in stderr for marker in _CONNECT_FAILURES):
        return SessionError(
            name,
            Phase.CONNECTING,
            f"cannot reach {where}: {last}",
            "Check the host name, the port and the network",
        )
    return SessionError(
        name, Phase.AUTHENTICATING, f"ssh to {where} failed: {last or exc}"
    )


def _auth_hint(machine: Machine, used_stored: bool) -> str:
    if used_stored:
        return (
            "The password remembered in the keyring was rejected; forget it and "
            "connect again to type the current one"
        )
    if machine.auth == "password":
        return "Check the user name and the password"
    if machine.auth == "key":
        return (
            f"Check that the public key of {machine.key_path} is in the server's "
            "authorized_keys"
        )
    return "Check that ssh-agent holds a key the server accepts (ssh-add -l)"


# -- deploy --------------------------------------------------------------------------


def target_machine(attempt: Attempt) -> Any:
    """Return the plumbum machine to deploy to: `local`, or an SshMachine."""
    from plumbum import local

    if attempt.machine.kind == "local":
        return local
    from plumbum import SshMachine

    link = attempt.links[0]
    env = link.env
    try:
        machine = SshMachine(
            attempt.machine.host,
            ssh_command=local["ssh"].with_env(**env),
            scp_command=local["scp"].with_env(**env),
            ssh_opts=link.options(),
            scp_opts=_scp_options(link.options()),
        )
    except Exception as exc:  # noqa: BLE001 - plumbum raises assorted errors
        raise SessionError(
            attempt.machine.name,
            Phase.FINDING_PYTHON,
            f"cannot open a shell session over ssh: {exc}",
        ) from exc
    attempt.plumbum_machine = machine
    return machine


def _scp_options(ssh_options: list[str]) -> list[str]:
    # scp spells the port -P and has no -l for the user.
    result: list[str] = []
    pairs = iter(ssh_options)
    for flag in pairs:
        value = next(pairs)
        if flag == "-p":
            result += ["-P", value]
        elif flag == "-l":
            result += ["-o", f"User={value}"]
        else:
            result += [flag, value]
    return result


def deploy(attempt: Attempt, target: Any, service: str, report: Report) -> Any:
    """Deploy `service` with DeployedServer and open a classic connection to it."""
    import rpyc_engine
    from rpyc_engine.deploy import DeployError

    machine = attempt.machine

    def progress(phase: str, fraction: float | None, detail: str) -> None:
        report(machine.id, Phase.from_engine(phase), fraction, detail)

    try:
        attempt.deployment = rpyc_engine.DeployedServer(
            target,
            python_executable=machine.python or None,
            service=service,
            progress=progress,
            cancel_event=attempt.cancel_event,
            alias=machine.name,
        )
        return attempt.deployment.classic_connect()
    except DeployError as exc:
        raise SessionError(
            machine.name,
            Phase.from_engine(exc.phase),
            _deploy_reason(exc),
            app_words(exc.hint),
        ) from exc


def _deploy_reason(exc: Any) -> str:
    reason = app_words(exc.reason)
    if exc.stderr_tail:
        reason += " (remote stderr: " + " | ".join(exc.stderr_tail[-3:]) + ")"
    return reason


def app_words(text: str) -> str:
    """Name the machine dialog's fields where the engine names its own arguments."""
    return text.replace("the interpreter override", "the machine's \"Python\" field")


# -- rpyc servers --------------------------------------------------------------------


def connect_rpyc(attempt: Attempt, report: Report) -> Any:
    """Connect to a running rpyc server over TCP or TLS (no deploy)."""
    import rpyc_engine
    from rpyc_engine import classic

    machine = attempt.machine
    host, port = machine.host, machine.effective_port
    report(machine.id, Phase.CONNECTING, None, f"{host}:{port}")
    try:
        if machine.rpyc_tls:
            tls = {
                "keyfile": machine.rpyc_keyfile or None,
                "certfile": machine.rpyc_certfile or None,
                "ca_certs": machine.rpyc_ca_certs or None,
            }
            if machine.rpyc_classic:
                return classic.ssl_connect(host, port, **tls)
            return rpyc_engine.ssl_connect(host, port, **tls)
        if machine.rpyc_classic:
            return classic.connect(host, port)
        return rpyc_engine.connect(host, port)
    except rpyc_engine.AuthenticationError as exc:
        raise SessionError(
            machine.name,
            Phase.HANDSHAKE,
            f"the TLS handshake with {host}:{port} failed: {exc}",
            "Check the CA file, the client certificate and key, and the server's "
            "certificate",
        ) from exc
    except OSError as exc:
        raise SessionError(
            machine.name,
            Phase.CONNECTING,
            f"cannot connect to {host}:{port}: {exc.strerror or exc}",
            "Check that the rpyc server is running and the host and port are right",
        ) from exc
    except rpyc_engine.RPyCError as exc:
        raise SessionError(
            machine.name,
            Phase.HANDSHAKE,
            f"{host}:{port} did not complete the rpyc handshake: {exc}",
            "Check that the port belongs to an rpyc server of the same mode "
            "(classic or plain)",
        ) from exc
