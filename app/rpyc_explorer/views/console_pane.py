"""The remote console pane: a `ConsoleWidget` driven by the explorer service.

Enter checks on the remote side whether the input is complete (``input_status``); a
complete input starts a run (``console_run``) and then long-polls ``console_poll``, so
stdout and stderr appear while the code runs. Ctrl+C calls ``console_interrupt``. Every
call is awaited in an asyncio task, so the window never waits on the network.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..machines.paths import data_dir
from ..widgets.console import ConsoleWidget
from ..widgets.console_history import History, history_path

log = logging.getLogger(__name__)

POLL_WAIT = 0.2


class ConsolePane(QWidget):
    """A Python console whose code runs on the remote machine."""

    # Emitted with (result, traceback) when a run ends; tests wait on it.
    runFinished = Signal(str, str)

    def __init__(self, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        history = History(history_path(data_dir(), session.machine.id))
        self.console = ConsoleWidget(history, self)
        self.run_id: int | None = None
        self._tasks: set[asyncio.Task] = set()

        self.status = QLabel("Python console on " + session.machine.name, self)
        self.interrupt_button = QPushButton("Interrupt", self)
        self.interrupt_button.setToolTip(
            "Raise KeyboardInterrupt in the running code (Ctrl+C)"
        )
        self.interrupt_button.setEnabled(False)
        self.interrupt_button.clicked.connect(self.interrupt)
        bar = QHBoxLayout()
        bar.addWidget(self.status, 1)
        bar.addWidget(self.interrupt_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.console, 1)

        self.console.executeRequested.connect(
            lambda text: self._spawn(self._on_execute(text))
        )
        self.console.completionRequested.connect(
            lambda text: self._spawn(self._complete(text))
        )
        self.console.interruptRequested.connect(self.interrupt)

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _on_execute(self, source: str) -> None:
        try:
            status = await self.session.call("input_status", source)
        except Exception as exc:
            self.console.cancel_check()
            self.console.append_output(f"\n[console unavailable: {exc}]\n", "note")
            return
        if status == "incomplete":
            self.console.continue_input()
            return
        await self.execute(source)

    async def execute(self, source: str) -> tuple[str, str]:
        """Run ``source`` remotely, streaming its output; return (result, traceback)."""
        self.console.start_run()
        self.interrupt_button.setEnabled(True)
        result, traceback_text = "", ""
        try:
            if source.strip():
                self.run_id = await self.session.call("console_run", source)
                result, traceback_text = await self._stream(self.run_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s: console run failed: %s", self.session.machine.name, exc)
            traceback_text = f"The remote console call failed: {exc}\n"
        finally:
            self.run_id = None
            self.interrupt_button.setEnabled(False)
        self.console.finish_run(result, traceback_text)
        self.runFinished.emit(result, traceback_text)
        return result, traceback_text

    async def _stream(self, run_id: int) -> tuple[str, str]:
        while True:
            chunks, done, result, traceback_text = await self.session.call(
                "console_poll", run_id, POLL_WAIT
            )
            for stream, text in chunks:
                self.console.append_output(text, stream)
            if done:
                return result, traceback_text

    async def _complete(self, text: str) -> None:
        try:
            start, candidates = await self.session.call("complete", text)
        except Exception as exc:
            log.info("%s: completion failed: %s", self.session.machine.name, exc)
            return
        self.console.show_completions(int(start), list(candidates))

    def interrupt(self) -> None:
        """Ask the remote side to raise KeyboardInterrupt in the running code.

        Python delivers it at the next bytecode, so code blocked in one long C call
        (a sleep, a socket read) stops only when that call returns; the note says so.
        """
        if self.run_id is not None:
            self.console.append_output(
                "[interrupt sent; a blocking call finishes before it takes effect]\n",
                "note",
            )
            self._spawn(self.session.call("console_interrupt", self.run_id))

    def note(self, text: str) -> None:
        """Show an informational line above the prompt (e.g. "sent to console")."""
        if self.console.running:
            self.console.append_output(text + "\n", "note")
            return
        pending = self.console.input_text()
        self.console.set_input("")
        self.console.append_output(text + "\n", "note")
        self.console.finish_run()
        self.console.set_input(pending)

    async def shutdown(self) -> None:
        """Interrupt a running run and cancel pending calls."""
        if self.run_id is not None:
            try:
                await asyncio.wait_for(
                    self.session.call("console_interrupt", self.run_id), 2
                )
            except Exception as exc:  # the session may be gone already
                log.debug("interrupt at shutdown failed: %s", exc)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
