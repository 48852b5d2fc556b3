"""Benchmark servers, one per process: ``python -m bench.servers ENGINE KIND``.

ENGINE is ``ours`` (rpyc_engine) or ``stock`` (rpyc 6.0.2); KIND is ``classic`` (the
classic SlaveService), ``service`` (a service whose root has ``getpid``),
``explorer`` (ours only: the explorer service) or ``echo`` (a raw TCP echo server,
the floor of a loopback round trip). The server listens on 127.0.0.1, prints its
port on stdout and runs until its stdin closes.
"""

from __future__ import annotations

import os
import socket
import sys
import threading


def _echo_server() -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def serve(client: socket.socket) -> None:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with client:
            while True:
                data = client.recv(65536)
                if not data:
                    return
                client.sendall(data)

    def accept_loop() -> None:
        while True:
            client, _ = listener.accept()
            threading.Thread(target=serve, args=(client,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    return listener


def _ours(kind: str) -> int:
    import rpyc_engine
    from rpyc_engine.server import ThreadedServer

    if kind == "classic":
        from rpyc_engine.services.classic import SlaveService as service
    elif kind == "explorer":
        from rpyc_engine.services.explorer import ExplorerService as service
    else:

        class BenchService(rpyc_engine.Service):
            def exposed_getpid(self) -> int:
                return os.getpid()

        service = BenchService
    server = ThreadedServer(service, hostname="127.0.0.1", port=0)
    server.start_in_thread()
    server.listening.wait(10)
    return int(server.port)


def _stock(kind: str) -> int:
    import rpyc
    from rpyc.utils.server import ThreadedServer

    if kind == "classic":
        service = rpyc.SlaveService
    else:

        class BenchService(rpyc.Service):
            def exposed_getpid(self) -> int:
                return os.getpid()

        service = BenchService
    server = ThreadedServer(service, hostname="127.0.0.1", port=0)
    threading.Thread(target=server.start, daemon=True).start()
    return int(server.port)


def main(argv: list) -> None:
    engine, kind = argv
    if kind == "echo":
        port = _echo_server().getsockname()[1]
    elif engine == "ours":
        port = _ours(kind)
    elif engine == "stock":
        port = _stock(kind)
    else:
        raise SystemExit(f"unknown engine {engine!r}; expected 'ours' or 'stock'")
    print(port, flush=True)
    sys.stdin.read()  # returns when the benchmark closes our stdin
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
