"""Where a persisted ingest spends its CPU: per thread of the collector, and its writer process.

``python -m benchmarks.writer_profile [N] [thread|process ...]`` runs one collector
per writer against the bench feed (``ws://``, N frames of one trade) in this
process and prints, per tick, the CPU time (user + system, from ``/proc``, so
a busy machine hardly changes it) of the receive thread, the writer thread
(with the part spent taking the batch from the pipeline and the part spent in
the sink's ``write``) and the writer process; for the process, also the same
after it took the run over (its start-up left out).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.clients import POLL_RECEIVED_S, POLL_STORED_S, TIMEOUT_S, wait_for
from benchmarks.live import feed


def task_cpu_s(tid: int, pid: int | str = "self") -> float:
    """CPU seconds of one thread (``/proc/PID/task/TID/stat``)."""
    fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int | None) -> float:
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(spent: dict, key: str, method):
    """``method``, adding the CPU time of this thread it takes to ``spent[key]``."""
    def call(*args, **kwargs):
        t = time.thread_time()
        try:
            return method(*args, **kwargs)
        finally:
            spent[key] += time.thread_time() - t
    return call


def profile(url: str, n: int, writer: str) -> dict:
    import rtkit
    from rtkit.pipeline_queue import PendingQueue
    from rtkit.runtime.receiver import Receiver
    from rtkit.runtime.writer import Writer

    tids: dict[str, int] = {}
    spent = {"take": 0.0, "write": 0.0}

    def named(role, run):
        def body(self):
            tids[role] = threading.get_native_id()
            run(self)
        return body

    originals = Receiver.run, Writer.run, PendingQueue.take
    Receiver.run = named("receive", Receiver.run)  # type: ignore[method-assign]
    Writer.run = named("writer", Writer.run)  # type: ignore[method-assign]
    PendingQueue.take = timed(spent, "take", PendingQueue.take)  # type: ignore[method-assign]
    try:
        return _run(rtkit, url, n, writer, tids, spent)
    finally:
        Receiver.run, Writer.run, PendingQueue.take = originals  # type: ignore[method-assign]


def _run(rtkit, url: str, n: int, writer: str, tids: dict, spent: dict) -> dict:
    with tempfile.TemporaryDirectory() as d:
        c = rtkit.Collector("binance", ["BTC-USDT"], url=url, db=Path(d) / "p.sqlite",
                            writer=writer)
        c.sink.write = timed(spent, "write", c.sink.write)
        started = time.monotonic()
        c.start()
        took_over: dict = {}

        def watch():
            while not getattr(c.sink, "in_child", True) and time.monotonic() - started < 60:
                time.sleep(0.005)
            took_over.update(s=time.monotonic() - started, ticks=c.stats["ticks"],
                             cpu={r: task_cpu_s(t) for r, t in tids.items()},
                             child=process_cpu_s(c.sink.pid))

        if writer == "process":
            threading.Thread(target=watch, daemon=True).start()
        try:
            deadline = time.monotonic() + TIMEOUT_S
            wait_for(c, "ticks", n, POLL_RECEIVED_S, deadline)
            wait_for(c, "stored", n, POLL_STORED_S, deadline)
            cpu = {r: task_cpu_s(t) for r, t in tids.items()}
            child = process_cpu_s(getattr(c.sink, "pid", None))
        finally:
            c.stop()
    out: dict = {"writer": writer, "seconds_until_stored": round(time.monotonic() - started, 2)}
    us = {r: v / n * 1e6 for r, v in cpu.items()}
    us.update({f"writer {k}": v / n * 1e6 for k, v in spent.items()}, process=child / n * 1e6)
    out["us_per_tick"] = {k: round(v, 2) for k, v in us.items()}
    if took_over.get("cpu"):
        out["took_over_after_s"] = round(took_over["s"], 2)
        out["ticks_before_take_over"] = took_over["ticks"]
    if took_over.get("cpu") and took_over["ticks"] < n:
        k = n - took_over["ticks"]
        after = {r: (cpu[r] - took_over["cpu"][r]) / k * 1e6 for r in cpu}
        after["process"] = (child - took_over["child"]) / k * 1e6
        out[f"us_per_tick_after_take_over ({k:,} ticks)"] = {r: round(v, 2)
                                                            for r, v in after.items()}
    return out


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 600_000
    for name in sys.argv[2:] or ["thread", "process"]:
        with feed(count) as address:
            print(json.dumps(profile(address, count, name)), flush=True)
