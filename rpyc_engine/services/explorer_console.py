"""Console runs of the explorer service: code in a worker thread, output by long poll.

`Console.run` starts the code in its own thread and returns a run id at once. The client
then calls `Console.poll` in a loop: each call waits up to ``wait`` seconds for new
output and returns what arrived, so output streams while the code runs and no callback
has to cross the connection. `Console.interrupt` raises KeyboardInterrupt in the run's
thread.

Output capture: ``sys.stdout`` and ``sys.stderr`` are replaced once by a proxy that
sends each write to the run owning the current thread and everything else to the
original stream, so other threads of the server keep their output.

Server side: CPython 3.8+, standard library only.
"""

from __future__ import annotations

import ast
import builtins
import codeop
import ctypes
import itertools
import sys
import threading
import traceback
from typing import Any, Dict, List, Optional, Tuple

from rpyc_engine.services.explorer_objects import cap

OUTPUT_LIMIT = 1024 * 1024
RESULT_LIMIT = 64 * 1024
MAX_POLL_WAIT = 5.0


class _Run:
    """State of one run; ``chunks`` are the ``(stream, text)`` pairs not yet polled."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.chunks: List[Tuple[str, str]] = []
        self.written = 0
        self.dropped = 0
        self.done = False
        self.result = ""
        self.traceback = ""
        self.thread: Optional[threading.Thread] = None
        self.condition = threading.Condition()

    def write(self, stream: str, text: str) -> None:
        with self.condition:
            room = OUTPUT_LIMIT - self.written
            if room <= 0:
                self.dropped += len(text)
                return
            if len(text) > room:
                self.dropped += len(text) - room
                text = text[:room]
            self.written += len(text)
            if self.chunks and self.chunks[-1][0] == stream:
                self.chunks[-1] = (stream, self.chunks[-1][1] + text)
            else:
                self.chunks.append((stream, text))
            self.condition.notify_all()


class _ThreadRouter:
    """A stand-in for sys.stdout or sys.stderr that routes writes by thread."""

    def __init__(self, original: Any, stream: str, routes: Dict[int, _Run]) -> None:
        self._original = original
        self._stream = stream
        self._routes = routes

    def write(self, text: str) -> int:
        run = self._routes.get(threading.get_ident())
        if run is None:
            return (
                self._original.write(text) if self._original is not None else len(text)
            )
        run.write(self._stream, str(text))
        return len(text)

    def flush(self) -> None:
        if threading.get_ident() not in self._routes and self._original is not None:
            self._original.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


_install_lock = threading.Lock()
_routes: Dict[int, _Run] = {}


def _install_routers() -> None:
    with _install_lock:
        if not isinstance(sys.stdout, _ThreadRouter):
            sys.stdout = _ThreadRouter(sys.stdout, "stdout", _routes)
        if not isinstance(sys.stderr, _ThreadRouter):
            sys.stderr = _ThreadRouter(sys.stderr, "stderr", _routes)


def input_status(source: str) -> str:
    """Return ``"complete"``, ``"incomplete"`` or ``"invalid"`` for console input.

    A compound statement stays incomplete until the input ends with an empty line, as
    in the interactive interpreter.
    """
    try:
        code = codeop.compile_command(source, "<console>", "exec")
    except (SyntaxError, ValueError, OverflowError):
        return "invalid"
    if code is None:
        return "incomplete"
    lines = source.rstrip(" \t").split("\n")
    if len(lines) > 1 and lines[-1].strip() and lines[-1][:1] in (" ", "\t"):
        return "incomplete"
    if source.rstrip().endswith(":"):
        return "incomplete"
    return "complete"


class Console:
    """The namespace and the runs of one client's console."""

    def __init__(self, namespace: Optional[Dict[str, Any]] = None) -> None:
        self.namespace: Dict[str, Any] = {} if namespace is None else namespace
        self.namespace.setdefault("__name__", "__console__")
        self.namespace.setdefault("__doc__", None)
        self.namespace.setdefault("__builtins__", builtins)
        self._runs: Dict[int, _Run] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def run(self, source: str) -> int:
        """Start ``source`` in a new thread; return the run id for `poll`."""
        _install_routers()
        run = _Run(next(self._ids))
        thread = threading.Thread(
            target=self._execute, args=(run, source), name=f"console-run-{run.run_id}"
        )
        thread.daemon = True
        run.thread = thread
        with self._lock:
            self._runs[run.run_id] = run
        thread.start()
        return run.run_id

    def _execute(self, run: _Run, source: str) -> None:
        _routes[threading.get_ident()] = run
        try:
            result = self._run_source(source)
            if result is not None:
                self.namespace["_"] = result
                run.result = cap(repr(result), RESULT_LIMIT)
        except BaseException:  # noqa: B036 - KeyboardInterrupt and SystemExit included
            run.traceback = _format_traceback()
        finally:
            _routes.pop(threading.get_ident(), None)
            with run.condition:
                run.done = True
                run.condition.notify_all()

    def _run_source(self, source: str) -> Any:
        tree = ast.parse(source, "<console>", "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        exec(compile(tree, "<console>", "exec"), self.namespace)
        if last is None:
            return None
        return eval(compile(last, "<console>", "eval"), self.namespace)

    def poll(self, run_id: int, wait: float = 0.2) -> tuple:
        """Wait up to ``wait`` seconds for output or the end of a run.

        Returns:
            ``(chunks, done, result_repr, traceback_text)``: ``chunks`` is a tuple of
            ``(stream, text)`` with ``stream`` ``"stdout"`` or ``"stderr"``.

        Raises:
            KeyError: no run has this id (or its end was already polled).
        """
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            raise KeyError(f"no console run with id {run_id!r}")
        wait = max(0.0, min(float(wait), MAX_POLL_WAIT))
        with run.condition:
            if not run.chunks and not run.done:
                run.condition.wait(wait)
            chunks = tuple(run.chunks)
            run.chunks = []
            done = run.done
        if done:
            if run.dropped:
                note = (
                    f"\n[output capped at {OUTPUT_LIMIT} characters; "
                    f"{run.dropped} more not shown]\n"
                )
                chunks += (("note", note),)
                run.dropped = 0
            self._forget(run_id)
        return (chunks, done, run.result if done else "", run.traceback if done else "")

    def _forget(self, run_id: int) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def interrupt(self, run_id: int) -> bool:
        """Raise KeyboardInterrupt in the run's thread; return whether it was running.

        The exception is delivered when the thread next executes Python bytecode, so a
        run blocked inside one long C call (``time.sleep``, a socket read) stops only
        once that call returns.
        """
        with self._lock:
            run = self._runs.get(run_id)
        if run is None or run.done or run.thread is None or run.thread.ident is None:
            return False
        changed = ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(run.thread.ident), ctypes.py_object(KeyboardInterrupt)
        )
        return changed == 1

    def shutdown(self) -> None:
        """Interrupt every unfinished run (the client disconnected)."""
        with self._lock:
            run_ids = list(self._runs)
        for run_id in run_ids:
            self.interrupt(run_id)


def _format_traceback() -> str:
    kind, value, tb = sys.exc_info()
    # Drop the frames of this module so the traceback starts in the user's code.
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(kind, value, tb))
