"""Log pane: records from worker threads, filters, redaction and export."""

from __future__ import annotations

import logging
import threading

from rpyc_explorer.widgets.log_pane import (
    LogPane,
    QtLogHandler,
    RedactionFilter,
    redact,
)


def make_pane(qtbot) -> tuple[LogPane, QtLogHandler, logging.Logger]:
    pane = LogPane()
    qtbot.addWidget(pane)
    handler = QtLogHandler()
    pane.attach(handler)
    logger = logging.getLogger(f"rpyc_explorer.test_log_pane.{id(pane)}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    return pane, handler, logger


def test_log_pane_receives_worker_thread_records(qtbot):
    pane, handler, logger = make_pane(qtbot)
    thread_names: list[str] = []

    def work() -> None:
        thread_names.append(threading.current_thread().name)
        logger.info("alpha connected", extra={"machine": "Alpha"})

    worker = threading.Thread(target=work, name="log-worker")
    worker.start()
    worker.join(timeout=5)
    qtbot.waitUntil(lambda: "alpha connected" in pane.view.toPlainText(), timeout=3000)
    assert thread_names == ["log-worker"]
    assert pane.machine_combo.findData("Alpha") > 0
    logger.removeHandler(handler)


def test_log_pane_filters_machine_and_level(qtbot):
    pane, handler, logger = make_pane(qtbot)
    logger.info("one", extra={"machine": "Alpha"})
    logger.debug("two-debug", extra={"machine": "Beta"})
    logger.warning("three", extra={"machine": "Beta"})
    qtbot.waitUntil(lambda: pane.machine_combo.count() == 3, timeout=3000)
    pane.show_machine("Beta")
    lines = pane.visible_lines()
    assert len(lines) == 1
    assert "three" in lines[0]
    pane.level_combo.setCurrentIndex(0)
    assert len(pane.visible_lines()) == 2
    pane.show_machine("")
    assert len(pane.visible_lines()) == 3
    assert "two-debug" in pane.view.toPlainText()
    logger.removeHandler(handler)


def test_log_pane_files_alias_prefixed_records(qtbot):
    pane, handler, logger = make_pane(qtbot)
    pane.register_machine("Alpha", "Alpha")
    logger.info("%s: deployed in %.2f s", "Alpha", 0.5)
    logger.info("%s: sent %d bytes", "conn 7", 10)
    logger.info("Alpha: no %s argument", "alias")

    by_text = {e.text.split(None, 2)[2]: e.machine_id for e in pane._entries}
    assert by_text["Alpha: deployed in 0.50 s"] == "Alpha"
    assert by_text["conn 7: sent 10 bytes"] == ""
    assert by_text["Alpha: no alias argument"] == ""
    assert pane.machine_combo.count() == 2
    pane.show_machine("Alpha")
    assert pane.visible_lines() == [pane._entries[0].text]
    logger.removeHandler(handler)


def test_log_pane_redacts_secrets(qtbot):
    pane, handler, logger = make_pane(qtbot)
    logger.info("login with password=hunter2 and token: abc123")
    qtbot.waitUntil(lambda: "login" in pane.view.toPlainText(), timeout=3000)
    text = pane.view.toPlainText()
    assert "hunter2" not in text
    assert "abc123" not in text
    logger.removeHandler(handler)


def test_redact_forms():
    assert "pw1" not in redact("password=pw1")
    assert "pw2" not in redact("Passphrase: 'pw2'")
    assert "pw3" not in redact('{"password": "pw3"}')
    assert redact("no secrets here, port=22") == "no secrets here, port=22"


def test_redaction_filter_rewrites_record():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "passwd=%s", ("pw",), None
    )
    assert RedactionFilter().filter(record)
    assert "pw" not in record.getMessage().replace("passwd", "")


def test_log_pane_export_writes_file(qtbot, tmp_path, monkeypatch):
    pane, handler, logger = make_pane(qtbot)
    logger.info("first line", extra={"machine": "Alpha"})
    logger.error("second line", extra={"machine": "Alpha"})
    qtbot.waitUntil(lambda: "second line" in pane.view.toPlainText(), timeout=3000)
    target = tmp_path / "exported.log"
    # The native file dialog cannot be driven offscreen, so its answer is fixed here.
    monkeypatch.setattr(
        "rpyc_explorer.widgets.log_pane.QFileDialog.getSaveFileName",
        lambda *args, **kwargs: (str(target), ""),
    )
    pane.export_button.click()
    text = target.read_text(encoding="utf-8")
    assert "first line" in text
    assert "second line" in text
    assert list(tmp_path.iterdir()) == [target]
    logger.removeHandler(handler)


def test_log_pane_export_dates_lines_and_reports_path(qtbot, tmp_path):
    import re

    pane, handler, logger = make_pane(qtbot)
    logger.info("dated line")
    pane.add_line("m", "Alpha", "added line")
    qtbot.waitUntil(lambda: "dated line" in pane.view.toPlainText(), timeout=3000)
    target = tmp_path / "exported.log"
    with qtbot.waitSignal(pane.exported, timeout=3000) as signal:
        pane.export_to(target)
    assert signal.args == [str(target)]
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} ")
    assert all(stamp.match(line) for line in lines), lines
    logger.removeHandler(handler)
