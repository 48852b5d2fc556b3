"""A real ExplorerService on loopback, wrapped in a real RemoteSession, for Qt tests.

`serve_explorer()` starts the engine's ThreadedServer with ExplorerService on
127.0.0.1, connects with the engine's client, and counts the request frames the client
writes, so a test can check how many round trips a page costs.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator
from typing import Any

from rpyc_engine.factory import connect
from rpyc_engine.protocol.framing import read_frame
from rpyc_engine.protocol.messages import decode_message
from rpyc_engine.protocol.wire import HANDLE_DEL, MSG_REQUEST
from rpyc_engine.server import ThreadedServer
from rpyc_engine.services.explorer import ExplorerService


class FrameCounter:
    """Counts what a client stream writes: every frame, and the round trips among them.

    ``frames`` counts each write (the engine writes one frame per call). ``round_trips``
    counts the requests that wait for a reply, so it leaves out DEL, the request a
    client sends without waiting when a proxy is garbage-collected.
    """

    def __init__(self, stream: Any) -> None:
        self.frames = 0
        self.round_trips = 0
        self._lock = threading.Lock()
        self._write = stream.write
        stream.write = self._counting_write

    def _counting_write(self, data: bytes) -> None:
        waits = _waits_for_reply(data)
        with self._lock:
            self.frames += 1
            self.round_trips += waits
        self._write(data)


def _waits_for_reply(frame: bytes) -> bool:
    try:
        payload = read_frame(io.BytesIO(frame).read)
        msg_type, _seq, body = decode_message(payload)
    except Exception:  # not one whole frame: count it, so the test errs high
        return True
    return msg_type == MSG_REQUEST and body[0] != HANDLE_DEL


@contextlib.contextmanager
def serve_explorer() -> Iterator[tuple[Any, FrameCounter]]:
    """Yield ``(client_connection, frame_counter)`` for a loopback ExplorerService."""
    server = ThreadedServer(ExplorerService, hostname="127.0.0.1", port=0)
    server.start_in_thread()
    conn = connect("127.0.0.1", server.port)
    try:
        yield conn, FrameCounter(conn._driver.stream)
    finally:
        conn.close()
        server.close()


def make_session(conn: Any) -> Any:
    """Wrap ``conn`` in the application's RemoteSession for "This computer"."""
    from rpyc_explorer.machines.record import Machine
    from rpyc_explorer.session.remote import RemoteSession

    return RemoteSession(Machine.this_computer(), conn, kind="explorer")
