"""rpyc_engine.aio on the default asyncio event loop, against servers on loopback."""

from __future__ import annotations

import asyncio
import datetime
import subprocess
import sys
import threading

import aio_scenarios
import pytest
import trustme

from rpyc_engine import aio, tls
from rpyc_engine.protocol.errors import ConnectionClosed
from rpyc_engine.server import ThreadedServer

pytestmark = pytest.mark.timeout(90)

RUN_TIMEOUT = 60.0


@pytest.fixture
def server():
    with aio_scenarios.running_server() as running:
        yield running


@pytest.fixture
def run():
    """Run a coroutine on a fresh default event loop, bounded by a timeout."""
    loop = asyncio.new_event_loop()

    def run_coroutine(coro, timeout=RUN_TIMEOUT):
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))

    yield run_coroutine
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()


def test_calls_and_attributes(server, run):
    run(aio_scenarios.calls_and_attributes(server))


def test_callback_while_loop_responsive(server, run):
    run(aio_scenarios.callback_while_loop_responsive(server))


def test_sync_call_on_loop_rejected(server, run):
    run(aio_scenarios.sync_call_on_loop_rejected(server))


def test_timeout_names_call(server, run):
    run(aio_scenarios.timeout_names_call(server))


def test_loop_lateness_during_1000_calls(server, run, record_property):
    ticks, worst = run(aio_scenarios.loop_lateness_during_calls(server))
    print(f"default loop: {ticks} timer ticks, worst lateness {worst * 1000:.1f} ms")
    record_property("worst_loop_lateness_ms", round(worst * 1000, 2))
    assert ticks >= 2  # the timer kept firing while the calls ran


def test_threads_share_connection(server, run):
    run(aio_scenarios.threads_share_connection(server))


def test_pending_call_fails_when_server_closes(server, run):
    async def scenario():
        conn = await aio_scenarios.connect(server)
        root = await aio.root(conn)
        task = asyncio.ensure_future(aio.callattr(root, "slow", 2))
        await asyncio.sleep(0.2)
        # server.close() joins the thread sleeping in slow(), so run it off the loop.
        closing = asyncio.get_running_loop().run_in_executor(None, server.close)
        with pytest.raises(ConnectionClosed):
            await task
        assert conn.closed
        await aio.close(conn)
        await closing
        return conn

    conn = run(scenario())
    conn._driver.worker_thread.join(10)
    assert not conn._driver.worker_thread.is_alive()


def test_close_stops_worker_thread(server, run):
    before = set(threading.enumerate())

    async def scenario():
        conn = await aio_scenarios.connect(server)
        root = await aio.root(conn)
        assert await aio.callattr(root, "add", 2, 2) == 4
        await aio.close(conn)
        await aio.close(conn)  # closing twice is harmless
        return conn

    conn = run(scenario())
    assert conn.closed
    conn._driver.worker_thread.join(10)
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not any(name.startswith("rpyc-aio") for name in left)


def test_connect_subprocess_stdio(run):
    async def scenario():
        conn = await aio.connect_subprocess(
            [sys.executable, "-m", "rpyc_engine", "serve", "--stdio"]
        )
        root = await aio.root(conn)
        name = await aio.callattr(root, "get_service_name")
        process = conn._driver.process
        await aio.close(conn)
        return name, process.returncode

    name, returncode = run(scenario())
    assert name == "SERVICE"
    assert returncode == 0


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("aio-pki")
    ca = trustme.CA()
    files = {"ca": directory / "ca.pem"}
    ca.cert_pem.write_to_path(files["ca"])
    leaves = {
        "server": ca.issue_cert("localhost", "127.0.0.1"),
        "client": ca.issue_cert("client1@example.org", common_name="client1"),
        "expired": ca.issue_cert(
            "localhost",
            not_before=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
            not_after=datetime.datetime(2020, 2, 1, tzinfo=datetime.timezone.utc),
        ),
    }
    for name, leaf in leaves.items():
        files[name] = directory / f"{name}.pem"
        leaf.private_key_and_cert_chain_pem.write_to_path(files[name])
    return {name: str(path) for name, path in files.items()}


@pytest.fixture
def tls_server(pki):
    servers = []

    def start(leaf="server", client_ca=None):
        authenticator = tls.SSLAuthenticator(pki[leaf], pki[leaf], ca_certs=client_ca)
        server = ThreadedServer(
            aio_scenarios.AioTestService,
            hostname="127.0.0.1",
            port=0,
            authenticator=authenticator,
        )
        servers.append(server)
        server.start_in_thread()
        return server

    yield start
    for server in servers:
        server.close()


def test_tls_connect_with_client_certificate(tls_server, pki, run):
    server = tls_server(client_ca=pki["ca"])

    async def scenario():
        context = tls.client_context(
            certfile=pki["client"], keyfile=pki["client"], ca_certs=pki["ca"]
        )
        conn = await aio.connect("localhost", server.port, ssl=context)
        root = await aio.root(conn)
        total = await aio.callattr(root, "add", 20, 22)
        await aio.close(conn)
        return total

    assert run(scenario()) == 42


@pytest.mark.parametrize(
    ("leaf", "client_ca", "check"),
    [
        ("server", "ca", "client-certificate-required"),
        ("expired", None, "certificate-expired"),
    ],
)
def test_tls_failure_named(tls_server, pki, run, leaf, client_ca, check):
    server = tls_server(leaf=leaf, client_ca=pki[client_ca] if client_ca else None)

    async def scenario():
        context = tls.client_context(ca_certs=pki["ca"])
        await aio.connect("localhost", server.port, ssl=context)

    with pytest.raises(tls.TLSError) as info:
        run(scenario())
    assert info.value.check == check


def test_connect_pipes_to_child(run):
    argv = [sys.executable, "-m", "rpyc_engine", "serve", "--stdio"]
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    async def scenario():
        conn = await aio.connect_pipes(child.stdout, child.stdin)
        root = await aio.root(conn)
        name = await aio.callattr(root, "get_service_name")
        await aio.close(conn)
        return name

    try:
        assert run(scenario()) == "SERVICE"
        assert child.wait(10) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
