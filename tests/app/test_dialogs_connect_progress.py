"""The connect panel: phase marks, overall progress and the failure message."""

from __future__ import annotations

from rpyc_explorer.views.connect_progress import PHASES_BY_KIND, ConnectProgress


def make_panel(qtbot) -> ConnectProgress:
    panel = ConnectProgress("build-01", "ci@build-01:22", PHASES_BY_KIND["ssh"])
    qtbot.addWidget(panel)
    panel.show()
    return panel


def test_connect_progress_marks_phases(qtbot):
    panel = make_panel(qtbot)
    assert panel.phase_state("connecting") == "waiting"
    panel.set_phase("uploading", "42 kB")
    assert panel.phase_state("connecting") == "done"
    assert panel.phase_state("finding-python") == "done"
    assert panel.phase_state("uploading") == "running"
    assert panel.phase_state("starting") == "waiting"
    assert panel.status_label.text() == "42 kB"
    assert panel.progress_bar.value() == 50


def test_connect_progress_fraction_within_phase(qtbot):
    panel = make_panel(qtbot)
    panel.set_phase("uploading")
    panel.set_progress(0.5)
    assert panel.progress_bar.value() == 58
    panel.set_progress(None)
    assert panel.progress_bar.value() == 58
    panel.set_progress(0.1)
    assert panel.progress_bar.value() == 58


def test_connect_progress_unknown_phase_is_status_only(qtbot):
    panel = make_panel(qtbot)
    panel.set_phase("connected", "explorer service")
    assert panel.current_phase == ""
    assert panel.status_label.text() == "explorer service"


def test_connect_progress_failure_message(qtbot):
    panel = make_panel(qtbot)
    panel.set_phase("uploading")
    panel.set_failed("authenticating", "Permission denied (publickey)")
    assert panel.phase_state("connecting") == "done"
    assert panel.phase_state("authenticating") == "failed"
    assert panel.phase_state("uploading") == "waiting"
    text = panel.error_label.text()
    assert "failed while authenticating" in text
    assert "Permission denied (publickey)" in text
    assert "ssh-add -l" in text
    assert panel.error_frame.isVisible()
    assert panel.cancel_button.isHidden()
    assert panel.title.text().startswith("<h3>Could not connect to build-01")


def test_connect_progress_failure_escapes_markup(qtbot):
    panel = make_panel(qtbot)
    panel.set_failed("handshake", "unexpected <b>reply</b>", "check <the> port")
    text = panel.error_label.text()
    assert "&lt;b&gt;reply&lt;/b&gt;" in text
    assert "check &lt;the&gt; port" in text


def test_connect_progress_buttons_emit(qtbot):
    panel = make_panel(qtbot)
    with qtbot.waitSignal(panel.cancel_requested, timeout=1000):
        panel.cancel_button.click()
    panel.set_failed("starting", "server exited with status 1")
    for button, signal in (
        (panel.retry_button, panel.retry_requested),
        (panel.close_button, panel.close_requested),
        (panel.log_button, panel.show_log_requested),
    ):
        with qtbot.waitSignal(signal, timeout=1000):
            button.click()


def test_connect_progress_long_failure_reachable_in_small_panel(qtbot):
    panel = make_panel(qtbot)
    panel.resize(700, 380)
    panel.set_failed("connecting", "The host key has CHANGED. " * 40)
    qtbot.waitUntil(panel.error_frame.isVisible, timeout=3000)
    label = panel.error_label
    # The whole text fits the label; what the panel cannot show scrolls.
    assert label.height() >= label.heightForWidth(label.width())
    assert panel.error_scroll.verticalScrollBar().maximum() > 0


def test_connect_progress_connect_failure_names_target(qtbot):
    panel = make_panel(qtbot)
    panel.set_failed("connecting", "Connection refused")
    text = panel.error_label.text()
    assert "Could not connect to ci@build-01:22." in text
    assert "while connecting" not in text
