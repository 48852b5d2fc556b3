"""The modules pane (objects model, details, evaluate, send to console)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from explorer_support import make_session, serve_explorer  # noqa: E402
from rpyc_explorer.models.objects_model import ItemRole  # noqa: E402
from rpyc_explorer.views.modules_pane import ModulesPane  # noqa: E402

SETUP = """
class Gadget:
    runs = 0
    plain = 5

    @property
    def counted(self):
        Gadget.runs += 1
        return {'value': Gadget.runs}

gadget = Gadget()
"""


@pytest.fixture
def pane(qtbot, qloop):
    with serve_explorer() as (conn, _counter):
        session = make_session(conn)
        conn.root.execute(SETUP)
        widget = ModulesPane(session)
        qtbot.addWidget(widget)
        yield widget
        qloop.run_until_complete(widget.shutdown())
        qloop.run_until_complete(session.close())


async def wait_until(predicate, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def expand(pane, arun, index):
    pane.tree.expand(index)
    pane.model.fetchMore(index)
    arun(
        wait_until(
            lambda: (
                pane.model.node(index).total is not None
                and not pane.model.node(index).loading
            )
        )
    )
    return {
        pane.model.index(row, 0, index).data(): pane.model.index(row, 0, index)
        for row in range(pane.model.rowCount(index))
    }


def runs(pane) -> int:
    return pane.session.conn.root.eval("Gadget.runs")


def test_browsing_does_not_run_property(pane, arun):
    console = expand(pane, arun, pane.model.top_index("console"))
    gadget = expand(pane, arun, console["gadget"])
    assert gadget["counted"].siblingAtColumn(1).data() == "property"
    pane.tree.setCurrentIndex(gadget["counted"])
    arun(wait_until(lambda: "not evaluated" in pane.details.toPlainText()))
    assert pane.evaluate_button.isEnabled()
    assert runs(pane) == 0


def test_evaluate_runs_property_once(pane, arun):
    console = expand(pane, arun, pane.model.top_index("console"))
    gadget = expand(pane, arun, console["gadget"])
    pane.tree.setCurrentIndex(gadget["counted"])
    arun(pane.evaluate_current())
    assert runs(pane) == 1
    assert "{'value': 1}" in pane.details.toPlainText()
    item = gadget["counted"].data(ItemRole)
    assert item.path[-1] == ("value", "counted")
    children = expand(pane, arun, gadget["counted"])
    assert children["value"].siblingAtColumn(2).data() == "1"
    assert runs(pane) == 1


def test_details_show_doc_signature_source(pane, arun):
    pane.model.set_options(flags=pane.model.flags_mask, module_filter="json")
    modules = expand(pane, arun, pane.model.top_index("modules"))
    if "json" not in modules:
        pane.session.conn.root.execute("import json")
        pane.model.reset_children()
        modules = expand(pane, arun, pane.model.top_index("modules"))
    json_children = expand(pane, arun, modules["json"])
    pane.tree.setCurrentIndex(json_children["dumps"])
    arun(wait_until(lambda: "Source:" in pane.details.toPlainText()))
    text = pane.details.toPlainText()
    assert text.startswith("json.dumps(obj, *, skipkeys=False")
    assert "Docstring:\nSerialize ``obj``" in text
    assert "def dumps(" in text


def test_send_to_console_binds_name(pane, arun):
    console = expand(pane, arun, pane.model.top_index("console"))
    gadget = expand(pane, arun, console["gadget"])
    pane.tree.setCurrentIndex(gadget["plain"])
    # The object's own name first; once that is taken, the next free objN.
    assert arun(pane.send_current_to_console()) == "plain"
    assert arun(pane.send_current_to_console()) == "obj1"
    assert pane.session.conn.root.eval("(plain, obj1)") == (5, 5)


def test_filter_keeps_expanded_branches(pane, arun):
    console = expand(pane, arun, pane.model.top_index("console"))
    expand(pane, arun, console["gadget"])
    modules_index = pane.model.top_index("modules")
    expand(pane, arun, modules_index)
    pane.filter_edit.setText("sys")
    pane.filter_edit.editingFinished.emit()

    def shown(index) -> list[str]:
        return [
            pane.model.index(row, 0, index).data()
            for row in range(pane.model.rowCount(index))
        ]

    def restored() -> bool:
        console_rows = shown(pane.model.top_index("console"))
        if "gadget" not in console_rows:
            return False
        gadget = pane.model.index(
            console_rows.index("gadget"), 0, pane.model.top_index("console")
        )
        return pane.tree.isExpanded(gadget) and "plain" in shown(gadget)

    arun(wait_until(lambda: "sys" in shown(pane.model.top_index("modules"))))
    assert pane.tree.isExpanded(pane.model.top_index("modules"))
    assert all("sys" in name for name in shown(pane.model.top_index("modules")))
    arun(wait_until(restored))


def test_type_column_fits_builtin_function_type(pane, arun):
    modules = expand(pane, arun, pane.model.top_index("modules"))
    builtins = expand(pane, arun, modules["builtins"])
    type_name = builtins["len"].siblingAtColumn(1).data()
    assert type_name == "builtin_function_or_method"
    needed = pane.tree.fontMetrics().horizontalAdvance(type_name)
    assert pane.tree.header().sectionSize(1) > needed


def test_collapse_releases_children(pane, arun):
    console_index = pane.model.top_index("console")
    expand(pane, arun, console_index)
    assert pane.model.rowCount(console_index) > 0
    pane.tree.collapse(console_index)
    assert pane.model.rowCount(console_index) == 0
