"""Show a dialog and await its answer without a nested event loop.

`QDialog.exec()` starts a nested event loop, which re-enters asyncio callbacks under
qasync. `run_dialog` opens the dialog window-modal and awaits its `finished` signal.
"""

from __future__ import annotations

import asyncio

from PySide6.QtWidgets import QDialog


async def run_dialog(dialog: QDialog) -> int:
    """Open `dialog`, wait until it closes and return its result code.

    If the awaiting task is cancelled, the dialog is rejected and closed.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()

    def on_finished(result: int) -> None:
        if not done.done():
            done.set_result(result)

    dialog.finished.connect(on_finished)
    dialog.open()
    try:
        return await done
    finally:
        dialog.finished.disconnect(on_finished)
        if dialog.isVisible():
            dialog.reject()
