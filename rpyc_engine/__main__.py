"""Command line: ``python -m rpyc_engine serve`` (console script ``rpyc-engine``).

Usage::

    python -m rpyc_engine serve [--classic] [--host H] [--port P] [--unix PATH]
                                [--stdio] [--threadpool] [--service MODULE:CLASS]
                                [--certfile PEM [--keyfile PEM] [--ca-certs PEM]]
                                [--log-level LEVEL]

The server prints its bound TCP port (or its Unix socket path) as the first line on
stdout once it listens, so ``--port 0`` can be used to pick a free port. It then serves
until SIGINT or SIGTERM and exits with status 0. With ``--stdio`` it serves exactly one
connection over its own stdin and stdout and exits when that connection closes. Nothing
else is written to stdout in that mode.

What is served:

* without ``--classic``: ``rpyc_engine.services.base.Service`` (or the class named by
  ``--service``). The plain service exposes only its name, so it is safe anywhere and
  useful to check that a connection works;
* with ``--classic``: ``SlaveService``, which gives every client that can connect full
  control of this machine as the user running the server. It is therefore refused on any
  TCP address that is not loopback unless ``--i-understand-classic-is-full-access`` is
  given. Unix sockets (created with mode 0600) and ``--stdio`` are allowed.

The default host is 127.0.0.1. Logs go to stderr. Standard library only, CPython 3.8+.
"""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import logging
import signal
import sys
import threading
from typing import Any, Optional, Sequence

__all__ = ["build_parser", "main"]

logger = logging.getLogger("rpyc_engine.cli")

EXIT_OK = 0
EXIT_FAILED = 1

FULL_ACCESS_FLAG = "--i-understand-classic-is-full-access"


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser; TLS options are added here too."""
    parser = argparse.ArgumentParser(
        prog="rpyc-engine", description="RPyC 6 compatible server."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    serve = commands.add_parser("serve", help="run a server until SIGINT or SIGTERM")
    serve.add_argument(
        "--classic",
        action="store_true",
        help="serve classic mode (SlaveService): full access to this machine",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=18812,
        help="TCP port to listen on (default 18812, with TLS too); 0 picks a free one",
    )
    where = serve.add_mutually_exclusive_group()
    where.add_argument(
        "--unix", metavar="PATH", help="listen on a Unix socket (mode 0600) at PATH"
    )
    where.add_argument(
        "--stdio",
        action="store_true",
        help="serve one connection over stdin/stdout, then exit",
    )
    serve.add_argument(
        "--threadpool",
        action="store_true",
        help="serve with a fixed pool of worker threads instead of one per client",
    )
    serve.add_argument(
        "--service",
        metavar="MODULE:CLASS",
        help="service class to serve instead of the plain Service",
    )
    serve.add_argument(
        FULL_ACCESS_FLAG,
        dest="full_access_ok",
        action="store_true",
        help="allow --classic on a non-loopback address",
    )
    tls = serve.add_argument_group("TLS (all TCP clients must then use ssl_connect)")
    tls.add_argument("--certfile", metavar="PEM", help="server certificate chain")
    tls.add_argument("--keyfile", metavar="PEM", help="private key of --certfile")
    tls.add_argument(
        "--ca-certs",
        metavar="PEM",
        help="CA certificates; clients must present a certificate issued by one",
    )
    serve.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="stderr log level (default INFO)",
    )
    return parser


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject unsafe or contradictory options before anything is bound."""
    if args.classic and args.service:
        parser.error("--classic and --service cannot be combined")
    uses_tcp = not args.unix and not args.stdio
    if args.classic and uses_tcp and not _is_loopback(args.host):
        if not args.full_access_ok:
            parser.error(
                f"refusing to serve classic mode on {args.host!r}: it is not a "
                "loopback "
                "address, and a classic server runs any code any client sends. Use "
                "--host 127.0.0.1, a --unix socket or an SSH tunnel, or add "
                f"{FULL_ACCESS_FLAG} if every host that can reach {args.host} "
                "is trusted"
            )
    if (args.keyfile or args.ca_certs) and not args.certfile:
        parser.error("--keyfile and --ca-certs need --certfile")
    if args.certfile and (args.unix or args.stdio):
        parser.error("TLS options apply to TCP only, not to --unix or --stdio")
    if not 0 <= args.port <= 65535:
        parser.error(f"invalid --port {args.port}: expected 0 to 65535")


def _load_service(args: argparse.Namespace) -> Any:
    if args.classic:
        from rpyc_engine.services.classic import SlaveService

        return SlaveService
    if not args.service:
        from rpyc_engine.services.base import Service

        return Service
    module_name, _, class_name = args.service.partition(":")
    if not class_name:
        raise SystemExit(
            f"invalid --service {args.service!r}: expected MODULE:CLASS, "
            "e.g. mypackage.services:MyService"
        )
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise SystemExit(f"cannot load --service {args.service!r}: {exc}") from exc


def _server_kwargs(args: argparse.Namespace) -> dict:
    """Map parsed options to server constructor keywords (TLS adds its own here)."""
    kwargs: dict = {"logger": logging.getLogger("rpyc_engine.server")}
    if args.unix:
        kwargs["socket_path"] = args.unix
    else:
        kwargs["hostname"] = args.host
        kwargs["port"] = args.port
    if args.certfile:
        from rpyc_engine.tls import SSLAuthenticator

        try:
            kwargs["authenticator"] = SSLAuthenticator(
                args.keyfile, args.certfile, ca_certs=args.ca_certs
            )
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise SystemExit(
                f"rpyc-engine: cannot load the TLS files (--certfile {args.certfile}, "
                f"--keyfile {args.keyfile}, --ca-certs {args.ca_certs}): {exc}"
            ) from exc
    return kwargs


def _serve_stdio(service: Any) -> int:
    """Serve one connection over this process's stdin/stdout until it closes.

    ``connect_stdpipes`` keeps private copies of descriptors 0 and 1 for the channel
    and points them at /dev/null, so ``print`` in remote code and child processes that
    inherit stdout cannot corrupt the frames.
    """
    from rpyc_engine.factory import connect_stdpipes

    conn = connect_stdpipes(service, {"connid": "stdio"})
    conn.serve_all()
    logger.info("stdio connection closed")
    return EXIT_OK


def _serve_network(args: argparse.Namespace, service: Any) -> int:
    from rpyc_engine.server import ThreadedServer, ThreadPoolServer

    server_class = ThreadPoolServer if args.threadpool else ThreadedServer
    server = server_class(service, **_server_kwargs(args))
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        logger.info("received signal %d, stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    thread = server.start_in_thread()
    print(args.unix if args.unix else server.port, flush=True)
    # Signal handlers run on the main thread, so it waits here rather than in accept().
    while not stop.wait(0.5):
        if not thread.is_alive():
            logger.error("server thread ended unexpectedly")
            server.close()
            return EXIT_FAILED
    server.close()
    return EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line and return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    service = _load_service(args)
    if args.stdio:
        return _serve_stdio(service)
    try:
        return _serve_network(args, service)
    except OSError as exc:
        where = args.unix if args.unix else f"{args.host}:{args.port}"
        print(f"rpyc-engine: cannot listen on {where}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
