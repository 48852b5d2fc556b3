"""``python -m bench``: measure our engine against stock rpyc 6.0.2; write the report.

Run from the repository root. ``--quick`` (the default) finishes in about two minutes
on two cores; ``--full`` repeats enough for a median and a spread. Each family runs in
turn; a family or a side that fails shows as "failed: reason" in its table.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

from bench import report
from bench.common import REPO_ROOT, Context, Figure, Settings, failed_family

logger = logging.getLogger("bench")

FAMILIES = [
    "calls",
    "listing",
    "introspection",
    "transfer",
    "memory",
    "lateness",
    "deploy",
    "gui",
]
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "benchmarks.md"
CHART_NAME = "benchmarks.png"


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick",
        dest="mode",
        action="store_const",
        const="quick",
        help="few repeats and a capped naive listing (default)",
    )
    mode.add_argument(
        "--full",
        dest="mode",
        action="store_const",
        const="full",
        help="7 repeats, larger batches and a longer naive listing",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=FAMILIES,
        metavar="NAME",
        help="run only this family (repeatable): " + ", ".join(FAMILIES),
    )
    parser.add_argument(
        "--repeat", type=int, help="samples per figure (overrides the mode)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="markdown file to rewrite (default: docs/benchmarks.md)",
    )
    parser.add_argument(
        "--chart",
        type=Path,
        help="chart file (default: images/benchmarks.png beside --output)",
    )
    parser.add_argument("--no-chart", action="store_true", help="do not draw the chart")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log progress details"
    )
    parser.set_defaults(mode="quick")
    return parser.parse_args(argv)


def run_families(names: List[str], ctx: Context) -> List[Figure]:
    figures: List[Figure] = []
    for name in names:
        started = time.perf_counter()
        logger.info("running %s", name)
        try:
            module = importlib.import_module(f"bench.{name}")
            figures += module.run(ctx)
        except Exception as exc:
            logger.exception("family %s failed", name)
            figures.append(failed_family(name, exc))
        logger.info("%s took %.1f s", name, time.perf_counter() - started)
    return figures


def mode_note(settings: Settings) -> str:
    if settings.mode == "full":
        return (
            f"Mode: full ({settings.repeat} samples per figure, "
            f"{settings.calls_per_batch} calls per latency sample; the naive listing "
            f"walks {settings.naive_entries} entries and is extrapolated to 10 000)."
        )
    return (
        f"Mode: **quick** ({settings.repeat} samples per figure, "
        f"{settings.calls_per_batch} calls per latency sample; the naive listing walks "
        f"only {settings.naive_entries} entries and is extrapolated to 10 000). "
        "Spreads "
        "are rough; run `python -m bench --full` for better ones."
    )


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("bench").setLevel(logging.INFO)
    settings = Settings.for_mode(args.mode, args.repeat)
    names = [name for name in FAMILIES if not args.only or name in args.only]
    facts = report.machine_facts()
    command = "python -m bench " + " ".join(
        shlex.quote(arg) for arg in (argv or sys.argv[1:])
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rpyc-bench-") as workdir:
        ctx = Context(settings, Path(workdir))
        try:
            figures = run_families(names, ctx)
        finally:
            ctx.close()
    facts["run time"] = f"{time.perf_counter() - started:.0f} s"
    facts["load average at end (1, 5, 15 min)"] = " ".join(
        f"{value:.2f}" for value in os.getloadavg()
    )
    output: Path = args.output
    chart_path = args.chart or output.parent / "images" / CHART_NAME
    chart_link, chart_error = None, None
    if not args.no_chart:
        try:
            from bench import chart

            chart.draw(
                figures, chart_path, title=f"ours vs rpyc 6.0.2 ({settings.mode})"
            )
            chart_link = _relative(chart_path, output.parent)
        except Exception as exc:
            logger.warning("chart failed: %s", exc)
            chart_error = str(exc)
    generated = report.render(
        figures, facts, command.strip(), mode_note(settings), chart_link, chart_error
    )
    report.write(output, generated)
    print(f"wrote {output}" + (f" and {chart_path}" if chart_link else ""))
    return 0


def _relative(path: Path, start: Path) -> str:
    try:
        return str(path.resolve().relative_to(start.resolve()))
    except ValueError:
        return str(path.resolve())


if __name__ == "__main__":
    sys.exit(main())
