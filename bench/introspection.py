"""``dir()`` of a large module with the type name of each attribute: naive vs one call.

Naive: ``dir()`` of the module netref, then ``type(getattr(module, name)).__name__``
per name, the same client code for both engines. One call: ours asks the explorer
service for the module's object page with every name shown (name, kind, type name,
short repr per row); stock calls a ``conn.execute``-defined function that returns
``(name, type name)`` pairs.
"""

from __future__ import annotations

from typing import Any, List

from bench.calls import servers
from bench.common import Context, Figure, FrameCounter, Side, describe_error, measure
from bench.listing import connect

FAMILY = "introspection"
MODULE = "os"
SHOW_ALL = 7  # SHOW_PRIVATE | SHOW_DUNDER | SHOW_CALLABLES of the explorer service

STOCK_DIR_SOURCE = """
def bench_dir(name):
    import importlib
    module = importlib.import_module(name)
    return tuple((attr, type(getattr(module, attr)).__name__) for attr in dir(module))
"""


def naive(conn: Any) -> int:
    module = getattr(conn.modules, MODULE)
    return len([(name, type(getattr(module, name)).__name__) for name in dir(module)])


def one_call_function(engine: str, conn: Any) -> Any:
    if engine == "ours":
        page = conn.root.object_page
        return lambda: page("modules", (("key", MODULE),), 0, 2000, SHOW_ALL, "")
    conn.execute(STOCK_DIR_SOURCE)
    function = conn.namespace["bench_dir"]
    return lambda: function(MODULE)


def measure_engine(engine: str, port: int, repeat: int) -> dict:
    conn = connect(engine, port)
    try:
        counter = FrameCounter(conn)
        getattr(conn.modules, MODULE)  # import it on the server before timing
        counter.take()
        result = {"naive": [s * 1000 for s in measure(lambda: naive(conn), repeat)]}
        result["naive-frames"] = [counter.take() / repeat]
        one_call = one_call_function(engine, conn)
        one_call()
        counter.take()
        result["one"] = [s * 1000 for s in measure(one_call, repeat)]
        result["one-frames"] = [counter.take() / repeat]
        same = one_call_function("stock", conn)
        same()
        result["same"] = [s * 1000 for s in measure(same, repeat)]
        result["names"] = [float(len(dir(getattr(conn.modules, MODULE))))]
    finally:
        conn.close()
    return result


def run(ctx: Context) -> List[Figure]:
    specs = {"ours": ("ours", "explorer"), "stock": ("stock", "classic")}
    results: dict = {}
    with servers(*specs.values()) as ports:
        for engine, spec in specs.items():
            try:
                results[engine] = measure_engine(
                    engine, ports[spec], ctx.settings.repeat
                )
            except Exception as exc:
                results[engine] = {"error": describe_error(exc)}

    def pick(engine: str, key: str) -> Side:
        data = results[engine]
        if "error" in data:
            return Side(error=data["error"])
        return Side(samples=data[key])

    names = results["ours"].get("names") or results["stock"].get("names") or [0]
    label = f"`dir({MODULE})` + type name of each of {names[0]:.0f} attributes"
    return [
        Figure(
            FAMILY,
            f"{label}, naive netref walk",
            "ms",
            ours=pick("ours", "naive"),
            stock=pick("stock", "naive"),
        ),
        Figure(
            FAMILY,
            "↳ frames sent by the client (naive)",
            "frames",
            ours=pick("ours", "naive-frames"),
            stock=pick("stock", "naive-frames"),
        ),
        Figure(
            FAMILY,
            f"{label}, one server-side call",
            "ms",
            ours=pick("ours", "one"),
            stock=pick("stock", "one"),
            note="ours: the explorer service's object page (name, kind, type name, "
            "short repr, children flag per row); rpyc: a `conn.execute`-defined "
            "function returning (name, type name)",
        ),
        Figure(
            FAMILY,
            "↳ frames sent by the client (one call)",
            "frames",
            ours=pick("ours", "one-frames"),
            stock=pick("stock", "one-frames"),
        ),
        Figure(
            FAMILY,
            f"{label}, same `conn.execute`-defined function on both",
            "ms",
            ours=pick("ours", "same"),
            stock=pick("stock", "same"),
            note="the engines alone: both servers run the function that rpyc uses "
            "above",
        ),
    ]
