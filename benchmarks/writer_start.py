"""How long a writer process takes to be ready, and how long ``stop()`` takes with it.

``python -m benchmarks.writer_start [ROUNDS] [N] [TREE ...]`` runs, for each TREE (a
checkout's folder, e.g. one made by ``git worktree add``; default: this one), in the
same rounds and alternating which goes first:

* ``ready_ms``: from the start of a writer process (``writer="process"``) until it
  has taken a run over, i.e. answered its ``open`` — its interpreter and imports;
  beside it ``bare_python_ms``, an interpreter that imports nothing (the floor), and
  ``child_peak_rss_mib``, the writer process's peak resident memory once ready;
* ``flush_ms``: one flush of N ticks written by a writer process that has taken the
  run over, from ``write`` to the child's answer (the final flush of a stop, alone);
* ``stop_ms``: the bench's ``stop_process_ms`` (``benchmarks.clients
  rtkit_collector_process_stop``): ``stop()`` right after a burst of N ticks is
  received, most of it not yet written; a stop that returned at its bound with ticks
  unstored counts as ``STOP_BOUND_MS`` (how many did: ``stops_cut_short``, 0 or 1 per
  round). Skipped when N is 0.

Each figure is measured in a fresh process whose current folder is the tree, so
that the tree's rtkit is the one imported; the medians are printed as JSON.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks import live

HERE = str(Path(__file__).resolve().parents[1])

#: run in the tree: the time from starting a writer process to its answer to ``open``
READY = """
import json, tempfile, time
from pathlib import Path
from rtkit.runtime.writer_child import WriterChild
from rtkit.sinks import RunInfo
from rtkit.sinks.sqlite import SQLiteSink
from rtkit.store import TickStore
with tempfile.TemporaryDirectory() as d:
    path = Path(d) / "ready.sqlite"
    local = SQLiteSink(path)
    local.open(RunInfo("bench", "binance", ["BTC-USDT"], "ws://127.0.0.1:1/ws"))
    t = time.perf_counter()
    child = WriterChild(path, TickStore)
    child.call(("open", RunInfo("bench", "binance", ["BTC-USDT"], ""), local.run_id), 60)
    ready_ms = (time.perf_counter() - t) * 1e3
    status = Path(f"/proc/{child.pid}/status").read_text().split("VmHWM:")[1]
    peak_mib = int(status.split()[0]) / 1024  # kB
    t = time.perf_counter()
    bare = __import__("subprocess").run([__import__("sys").executable, "-c", "pass"])
    bare_ms = (time.perf_counter() - t) * 1e3
    child.call(("close", None), 5)
    child.end(5)
    local.close()
print(json.dumps({"ready_ms": ready_ms, "bare_python_ms": bare_ms,
                  "child_peak_rss_mib": peak_mib}))
"""


#: ``stop()``'s own bound (its ``timeout_s``): a stop that returns with ticks unstored took
#: at least this long, and counts as this in the median (and in ``stops_cut_short``)
STOP_BOUND_MS = 2000.0

#: run in the tree: one flush of N ticks (argv[1]) through a writer process that has
#: taken the run over, from the parent's ``write`` until the child's answer: the final
#: flush of a ``stop()``, alone
FLUSH = """
import json, sys, tempfile, time
from pathlib import Path
from rtkit.pipeline_queue import Batch
from rtkit.runtime.writer_process import ProcessSink
from rtkit.sinks import RunInfo
T0 = 1_764_000_000_000_000_000
n = int(sys.argv[1])
ticks = [("binance", "BTC-USDT", str(i), T0 + i, T0 + i, 100.0 + i % 7, 0.5, "buy")
         for i in range(n)]
with tempfile.TemporaryDirectory() as d:
    sink = ProcessSink(Path(d) / "flush.sqlite")
    sink.open(RunInfo("bench", "binance", ["BTC-USDT"], ""))
    deadline = time.monotonic() + 60
    while not (sink.check() is None and sink.in_child) and time.monotonic() < deadline:
        time.sleep(0.01)
    t = time.perf_counter()
    assert sink.write(Batch(ticks, [], []), []) == n
    flush_ms = (time.perf_counter() - t) * 1e3
    sink.close()
print(json.dumps({"flush_ms": flush_ms}))
"""

def in_tree(tree: str, args: list[str]) -> dict:
    out = subprocess.run([sys.executable, *args], cwd=tree, capture_output=True, text=True,
                         timeout=300)
    if out.returncode and "stop() returned with" in out.stderr:
        return {"stop_ms": STOP_BOUND_MS, "pending_at_stop": -1, "cut_short": 1}
    if out.returncode:
        raise RuntimeError(f"{args[:3]} in {tree} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(rounds: int = 5, n: int = 200_000, trees: tuple[str, ...] = (HERE,)) -> dict:
    runs: dict[str, dict[str, list[float]]] = {t: {} for t in trees}
    for _ in range(rounds):
        order = random.sample(trees, len(trees))
        for tree in order:
            for key, value in in_tree(tree, ["-c", READY]).items():
                runs[tree].setdefault(key, []).append(value)
        for tree in order if n else ():
            for key, value in in_tree(tree, ["-c", FLUSH, str(n)]).items():
                runs[tree].setdefault(key, []).append(value)
        if n:
            for tree in order:
                with live.feed(n) as url:
                    got = in_tree(tree, ["-m", "benchmarks.clients",
                                         "rtkit_collector_process_stop", url, str(n)])
                runs[tree].setdefault("stop_ms", []).append(got["stop_ms"])
                runs[tree].setdefault("pending_at_stop", []).append(got["pending_at_stop"])
                runs[tree].setdefault("stops_cut_short", []).append(got.get("cut_short", 0))
    out = {tree: {key: {"median": round(statistics.median(v)), "each": [round(x) for x in v]}
                  for key, v in figures.items()} for tree, figures in runs.items()}
    for figures in out.values():  # how many stops in all, not a median
        if "stops_cut_short" in figures:
            figures["stops_cut_short"]["median"] = sum(figures["stops_cut_short"]["each"])
    print(json.dumps(out, indent=1), flush=True)
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 5, int(args[1]) if len(args) > 1 else 200_000,
         tuple(str(Path(a).resolve()) for a in args[2:]) or (HERE,))
