"""Zero-deploy to the loopback sshd: start to first call, close, leftovers, memory.

Both engines deploy to the same throwaway sshd (tests/sshd.py) in the same run: ours
with ``rpyc_engine.deploy.DeployedServer``, stock with
``rpyc.utils.zerodeploy.DeployedServer`` (temp dir, scp copy, remote TCP listener,
``ssh -L`` tunnel). The floor is ``ssh host true`` against the same sshd. The remote
host is this machine, so the server process and temp dir are watched through /proc
and the file system, polled every 2 ms from the start of ``close()``.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any, Callable, Dict, List, Optional

from bench.common import (
    Context,
    Figure,
    Side,
    describe_error,
    measure,
    process_gone,
    rss_mib,
    wait_until,
)

FAMILY = "deploy"
GONE_TIMEOUT = 15.0
STOCK_SCRIPT = "deployed-rpyc.py"


def ours_deployment(machine: Any) -> Any:
    from rpyc_engine.deploy import DeployedServer

    return DeployedServer(machine)


def stock_deployment(machine: Any) -> Any:
    from rpyc.utils.zerodeploy import DeployedServer

    return DeployedServer(machine)


def ours_multi(machines: List[Any]) -> Any:
    from rpyc_engine.deploy import MultiServerDeployment

    return MultiServerDeployment(machines)


def stock_multi(machines: List[Any]) -> Any:
    from rpyc.utils.zerodeploy import MultiServerDeployment

    return MultiServerDeployment(machines)


def stock_servers(sshd_pid: int) -> Dict[int, str]:
    """Return ``{pid: temp dir}`` of every stock deployed server under the sshd."""
    from sshd import descendants  # tests/sshd.py, on sys.path once ctx.sshd() ran

    found = {}
    for pid in descendants(sshd_pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                argv = cmdline.read().split(b"\0")
        except OSError:
            continue
        # The python process itself, not the shell plumbum wraps it in.
        if not os.path.basename(argv[0]).startswith(b"python"):
            continue
        for arg in argv[1:]:
            if arg.startswith(b"/") and arg.endswith(STOCK_SCRIPT.encode()):
                found[pid] = os.path.dirname(arg.decode())
    return found


def remote_servers(
    engine: str, deployment: Any, sshd_pid: int, before: Dict[int, str]
) -> Dict[int, Optional[str]]:
    """Return ``{remote pid: temp dir or None}`` of the servers of ``deployment``."""
    if engine == "ours":
        servers = getattr(deployment, "servers", None) or [deployment]
        return {server.remote_pid: None for server in servers}
    return {
        pid: path for pid, path in stock_servers(sshd_pid).items() if pid not in before
    }


def dir_size_kib(path: str) -> float:
    done = subprocess.run(
        ["du", "-sk", path], capture_output=True, text=True, timeout=10
    )
    return float(done.stdout.split()[0])


def shared_login_machine(server: Any, control_dir: str) -> Any:
    """Return an ``SshMachine`` whose session is an ssh ControlMaster.

    Later ``ssh`` runs to the same host (the deploy's exec, stock's scp and tunnel)
    then reuse its login instead of a new key exchange and authentication, as the
    application's own SSH sessions do.
    """
    from plumbum import SshMachine

    shared = ["-o", "ControlMaster=auto", "-o", f"ControlPath={control_dir}/cm-%C"]
    options = server.ssh_options()
    return SshMachine(
        server.host,
        user=server.user,
        port=server.port,
        keyfile=server.key_path,
        ssh_opts=[*options, "-o", "BatchMode=yes", *shared],
        scp_opts=[*options, *shared],
    )


def one_deploy(
    engine: str, server: Any, control_dir: Optional[str] = None
) -> Dict[str, float]:
    """Deploy once, make one call, close; return the phase times in seconds."""
    deploy = ours_deployment if engine == "ours" else stock_deployment
    before = stock_servers(server.pid)
    times: Dict[str, float] = {}
    started = time.perf_counter()
    if control_dir is None:
        machine = server.ssh_machine()
    else:
        machine = shared_login_machine(server, control_dir)
    times["machine"] = time.perf_counter() - started
    try:
        mark = time.perf_counter()
        deployment = deploy(machine)
        times["deploy"] = time.perf_counter() - mark
        mark = time.perf_counter()
        conn = deployment.classic_connect()
        times["connect"] = time.perf_counter() - mark
        mark = time.perf_counter()
        conn.modules.os.getpid()
        times["call"] = time.perf_counter() - mark
        times["total"] = time.perf_counter() - started
        remote = remote_servers(engine, deployment, server.pid, before)
        times["rss"] = sum(rss_mib(pid) for pid in remote)
        temp_dirs = [path for path in remote.values() if path]
        if temp_dirs:
            times["tmp-size"] = sum(dir_size_kib(path) for path in temp_dirs)
        times.update(close_and_watch(deployment, remote))
    finally:
        machine.close()
    return times


def close_and_watch(
    deployment: Any, remote: Dict[int, Optional[str]]
) -> Dict[str, float]:
    """Close ``deployment``; time the call and the wait until its leftovers are gone."""
    times = {}
    started = time.perf_counter()
    deployment.close()
    times["close"] = time.perf_counter() - started
    wait_until(lambda: all(process_gone(pid) for pid in remote), GONE_TIMEOUT)
    times["process-gone"] = time.perf_counter() - started
    temp_dirs = [path for path in remote.values() if path]
    if temp_dirs:
        wait_until(
            lambda: not any(os.path.exists(path) for path in temp_dirs), GONE_TIMEOUT
        )
        times["tmp-gone"] = time.perf_counter() - started
    return times


def multi_deploy(engine: str, server: Any, hosts: int = 3) -> Dict[str, float]:
    """Deploy to ``hosts`` machines (all the same sshd) and call each once."""
    deploy = ours_multi if engine == "ours" else stock_multi
    before = stock_servers(server.pid)
    machines: List[Any] = []
    times: Dict[str, float] = {}
    started = time.perf_counter()
    try:
        machines = [server.ssh_machine() for _ in range(hosts)]
        deployment = deploy(machines)
        conns = deployment.classic_connect_all()
        for conn in conns:
            conn.modules.os.getpid()
        times["total"] = time.perf_counter() - started
        remote = remote_servers(engine, deployment, server.pid, before)
        if len(remote) != hosts:
            raise RuntimeError(f"found {len(remote)} remote servers, expected {hosts}")
        times.update(close_and_watch(deployment, remote))
    finally:
        for machine in machines:
            machine.close()
    return times


def run(ctx: Context) -> List[Figure]:
    server = ctx.sshd()
    repeat = ctx.settings.slow_repeat
    floor = measure(lambda: server.run("true").check_returncode(), max(3, repeat))
    single = {
        engine: collect(lambda e=engine: one_deploy(e, server), repeat)
        for engine in ("ours", "stock")
    }
    control_dir = str(ctx.workdir)
    shared = {
        engine: collect(lambda e=engine: one_deploy(e, server, control_dir), repeat)
        for engine in ("ours", "stock")
    }
    multi = {
        engine: collect(lambda e=engine: multi_deploy(e, server), repeat)
        for engine in ("ours", "stock")
    }
    return (
        single_figures(single, floor)
        + shared_figures(shared, floor)
        + multi_figures(multi)
    )


def shared_figures(results: Dict[str, Any], floor: List[float]) -> List[Figure]:
    """Start → first call when the ``SshMachine`` session is a ControlMaster."""
    note = (
        "`SshMachine` with `ControlMaster=auto`: the deploy's own ssh runs reuse the "
        "machine's login (the application's SSH sessions work this way)"
    )
    return [
        Figure(
            FAMILY,
            "start → first remote call, login shared through ssh ControlMaster",
            "s",
            ours=pick(results, "ours", "total"),
            stock=pick(results, "stock", "total"),
            floor=Side(samples=floor),
            note=note,
        ),
        Figure(
            FAMILY,
            "↳ `DeployedServer(machine)`, login shared",
            "s",
            ours=pick(results, "ours", "deploy"),
            stock=pick(results, "stock", "deploy"),
        ),
    ]


def collect(sample: Callable[[], Dict[str, float]], repeat: int) -> Any:
    """Return ``{key: [samples]}`` over ``repeat`` runs, or a failure's error text."""
    merged: Dict[str, List[float]] = {}
    try:
        for _ in range(repeat):
            for key, value in sample().items():
                merged.setdefault(key, []).append(value)
    except Exception as exc:
        return describe_error(exc)
    return merged


def pick(results: Dict[str, Any], engine: str, key: str, missing: str = "n/a") -> Side:
    data = results[engine]
    if isinstance(data, str):
        return Side(error=data)
    if key not in data:
        return Side(text=missing)
    return Side(samples=data[key])


def single_figures(results: Dict[str, Any], floor: List[float]) -> List[Figure]:
    no_dir = "none: no temp dir (the bundle is imported from memory)"
    rows = [
        (
            "total",
            "start → first remote call (`SshMachine` + `DeployedServer` + "
            "`classic_connect` + `getpid`)",
            "s",
            True,
        ),
        ("machine", "↳ `SshMachine(...)`", "s", False),
        ("deploy", "↳ `DeployedServer(machine)`", "s", False),
        ("connect", "↳ `classic_connect()`", "s", False),
        ("call", "↳ first `getpid()`", "s", False),
        ("close", "`DeployedServer.close()` call duration", "s", False),
        (
            "process-gone",
            "remote server process gone, from the start of `close()`",
            "s",
            False,
        ),
        ("tmp-gone", "remote temp dir gone, from the start of `close()`", "s", False),
        ("tmp-size", "size of the remote temp dir while running", "KiB", False),
        ("rss", "deployed server RSS after connect + one call", "MiB", False),
    ]
    figures = [
        Figure(
            FAMILY,
            "`ssh host true` against the same sshd (the floor)",
            "s",
            ours=Side(text="—"),
            stock=Side(text="—"),
            floor=Side(samples=floor),
        )
    ]
    for key, label, unit, with_floor in rows:
        figures.append(
            Figure(
                FAMILY,
                label,
                unit,
                ours=pick(results, "ours", key, no_dir),
                stock=pick(results, "stock", key),
                floor=Side(samples=floor) if with_floor else None,
            )
        )
    return figures


def multi_figures(results: Dict[str, Any]) -> List[Figure]:
    rows = [
        (
            "total",
            "`MultiServerDeployment`, 3 `SshMachine` to the same host: start → "
            "first call on all 3",
            "s",
        ),
        ("close", "↳ `close()`", "s"),
        (
            "process-gone",
            "↳ all 3 server processes gone, from the start of `close()`",
            "s",
        ),
        ("tmp-gone", "↳ all 3 temp dirs gone, from the start of `close()`", "s"),
    ]
    return [
        Figure(
            FAMILY,
            label,
            unit,
            ours=pick(results, "ours", key, "none: no temp dir"),
            stock=pick(results, "stock", key),
        )
        for key, label, unit in rows
    ]
