"""Re-collecting the same market replaces the earlier collector, visibly (#16 item 10)."""

import subprocess
import sys
from pathlib import Path

import pytest

import rtkit
from rtkit.collector import CollectorReplaced
from rtkit.runtime import registry
from rtkit.sim import Simulator

pytestmark = pytest.mark.usefixtures("no_thread_leak")


def test_same_symbols_in_another_order_replace_the_collector_with_a_warning(db):
    with Simulator("binance", rate=200, seed=1) as sim:
        a = rtkit.collect("binance", ["ETH-USDT", "BTC-USDT"], url=sim.url, db=db)
        try:
            with pytest.warns(CollectorReplaced, match="stopping it first") as caught:
                b = rtkit.collect("binance", ["BTC-USDT", "ETH-USDT"], url=sim.url, db=db)
            # the warning points at the caller's line (this file), where a notebook shows it
            assert caught[0].filename == __file__
            assert a.name == b.name == "binance:BTC-USDT,ETH-USDT"
            assert not a.running and a.status == "stopped" and b.running
            assert registry.running(b.name) is b
        finally:
            rtkit.stop_all()


def test_the_warning_is_shown_every_time_not_once_per_line(tmp_path):
    """In a fresh interpreter (Python's own warning filters, as a notebook kernel has
    them), three starts from one line warn twice, on stderr, not once."""
    db = str(tmp_path / "x.sqlite")
    script = (
        "import rtkit\n"
        "from rtkit.sim import Simulator\n"
        "with Simulator('binance', rate=100, seed=1) as sim:\n"
        "    for _ in range(3):\n"
        f"        rtkit.collect('binance', ['BTC-USDT'], url=sim.url, db={db!r})\n"
        "    rtkit.stop_all()\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, cwd=Path(__file__).parent.parent)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("CollectorReplaced: rtkit: a collector named") == 2, out.stderr
