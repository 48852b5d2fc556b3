"""The benchmark command: a tiny real run, and how the report keeps others' sections.

No figure is checked against a time limit; speed is what the command reports, not
what the tests assert.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from bench import report  # noqa: E402
from bench.__main__ import run_families  # noqa: E402
from bench.common import Context, Figure, Settings, Side  # noqa: E402

RUN_TIMEOUT = 300


def table_rows(text: str, heading: str) -> list[list[str]]:
    """Return the cells of the data rows of the table under ``## heading``."""
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if (
            line.startswith("| ")
            and not line.startswith("| figure")
            and "---" not in line
        ):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


@pytest.mark.slow
def test_calls_family_fills_both_columns(tmp_path):
    output = tmp_path / "benchmarks.md"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--only",
            "calls",
            "--repeat",
            "1",
            "--output",
            str(output),
            "--no-chart",
        ],
        cwd=str(REPO_ROOT),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = output.read_text()
    assert text.startswith(report.BEGIN)
    assert "python -m bench --only calls --repeat 1" in text
    assert "| rpyc | 6.0.2 |" in text
    rows = table_rows(text, "Trivial calls")
    tcp_rows = [row for row in rows if row[0].endswith("TCP")]
    assert len(tcp_rows) >= 10, rows
    for name, _unit, ours, stock, ratio, _floor in tcp_rows:
        assert ours.startswith("**"), f"{name}: ours column is {ours!r}"
        assert stock.startswith("**"), f"{name}: rpyc column is {stock!r}"
        assert "×" in ratio, f"{name}: ratio column is {ratio!r}"
    ping = next(row for row in tcp_rows if row[0].startswith("`conn.ping()` (1 RT)"))
    assert ping[5].startswith("**"), "the raw socket floor is missing"


def test_failed_family_becomes_row(tmp_path):
    ctx = Context(Settings.for_mode("quick"), tmp_path)
    figures = run_families(["no_such_family"], ctx)
    assert len(figures) == 1
    assert figures[0].family == "no_such_family"
    assert figures[0].ours.error is not None
    assert "ModuleNotFoundError" in figures[0].ours.error
    rendered = report.render(figures, {"cores": "2"}, "python -m bench", "", None, None)
    assert "failed: ModuleNotFoundError" in rendered


def test_rewrite_keeps_other_sections(tmp_path):
    output = tmp_path / "benchmarks.md"
    bundle = "## Bundle\n\nSize: 99 MB\n"
    output.write_text(bundle)
    figure = Figure(
        "calls", "ping", "µs/call", ours=Side([1.0, 2.0]), stock=Side([4.0])
    )
    first = report.render([figure], {}, "python -m bench", "", None, None)
    report.write(output, first)
    assert output.read_text().startswith(report.BEGIN)
    assert output.read_text().endswith(bundle)

    marked = "<!-- BEGIN notes -->\nkept inside\n<!-- END notes -->"
    output.write_text(
        output.read_text().replace(report.END, marked + "\n" + report.END)
    )
    second = report.render([figure], {}, "python -m bench --quick", "", None, None)
    report.write(output, second)
    text = output.read_text()
    assert text.count("## Bundle") == 1
    assert "Size: 99 MB" in text
    assert marked in text
    assert "python -m bench --quick" in text
    assert "2.67× better" in text  # stock 4.0 / ours median 1.5


# Families that need only loopback TCP and this machine's Python; a failed row in one
# of them is a broken engine. The deploy, GUI and lateness families also depend on the
# sshd, Qt and the machine's load, so their failed rows are reported, not asserted.
ENGINE_FAMILIES = ("calls", "listing", "introspection", "transfer", "memory")
QUICK_RUN_TIMEOUT = 600


@pytest.mark.slow
def test_quick_mode_runs_every_family(tmp_path):
    output = tmp_path / "benchmarks.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output), "--no-chart"],
        cwd=str(REPO_ROOT),
        capture_output=True,
        text=True,
        timeout=QUICK_RUN_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = output.read_text()
    assert "## Targets" in text
    for family, title in report.FAMILY_TITLES.items():
        assert f"## {title}" in text, f"the {family} family has no section"
    for family in ENGINE_FAMILIES:
        rows = table_rows(text, report.FAMILY_TITLES[family])
        failed = [row[0] for row in rows if any("failed:" in cell for cell in row)]
        assert not failed, f"{family}: failed rows {failed}"
    other_failures = [line for line in text.splitlines() if "failed:" in line]
    print("\n".join(other_failures))
