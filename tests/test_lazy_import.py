"""``import rtkit`` then ``rtkit.analysis.ohlcv(...)``, as the README writes it: the
submodules a user reaches for are attributes of the package, imported on first use, so
that ``import rtkit`` itself loads no widget, plotting, simulator or on-chain code.

Each check runs in a fresh interpreter: in this one, other tests imported them already."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: what only the lazily imported submodules need (rtkit.widgets, rtkit.sim, rtkit.onchain)
HEAVY = ("ipywidgets", "bqplot", "websockets", "rtkit.sim", "rtkit.onchain", "rtkit.widgets",
         "rtkit.analysis")


def fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_import_rtkit_loads_no_widgets_simulator_or_onchain_code():
    loaded = fresh(f"import sys, rtkit; print([m for m in {HEAVY!r} if m in sys.modules])")
    assert loaded == "[]"


def test_submodules_are_attributes_without_an_import_of_their_own():
    out = fresh(
        "import rtkit\n"
        "from rtkit.analysis import ohlcv\n"  # the same objects as the attributes give
        "assert rtkit.analysis.ohlcv is ohlcv\n"
        "assert rtkit.sim.Simulator.__name__ == 'Simulator'\n"
        "assert rtkit.widgets.Panel.__name__ == 'Panel'\n"
        "assert rtkit.onchain.collect.__module__ == 'rtkit.onchain.collector'\n"
        "listed = dir(rtkit)\n"
        "print(all(n in listed for n in ('analysis', 'onchain', 'sim', 'widgets', 'collect')))\n"
        "try:\n"
        "    rtkit.analysys\n"
        "except AttributeError as exc:\n"
        "    print(exc)\n")
    assert out.splitlines() == ["True", "module 'rtkit' has no attribute 'analysys'"]


def test_the_readme_analysis_call_runs_after_a_bare_import_rtkit():
    bars = fresh(
        "import pandas as pd, rtkit\n"
        "ticks = pd.DataFrame({'timestamp': pd.to_datetime([0, 10**9], utc=True),\n"
        "                      'symbol': ['BTC-USDT'] * 2, 'price': [1.0, 2.0],\n"
        "                      'volume': [1.0, 1.0], 'side': ['buy', 'sell']})\n"
        "print(len(rtkit.analysis.ohlcv(ticks, '1s')))")
    assert bars == "2"


def test_a_collector_loads_no_http_client_before_its_first_gap():
    """The backfill thread makes its REST client when a gap is to be filled: importing
    httpx and loading the CA bundle at the start held the interpreter lock ~60 ms, and
    the first 100 ms of a 20k-frame/s feed had ~700 ticks over 1 ms late."""
    out = fresh(
        "import sys, tempfile, threading, time\n"
        "from pathlib import Path\n"
        "import rtkit\n"
        "from rtkit.backfill import Backfiller\n"
        "from rtkit.sim import Simulator\n"
        "looked = threading.Event()\n"
        "look = Backfiller._next\n"
        "def _next(self, ledger):\n"
        "    looked.set()\n"
        "    return look(self, ledger)\n"
        "Backfiller._next = _next\n"
        "with tempfile.TemporaryDirectory() as d, Simulator('binance', rate=500, count=200,\n"
        "                                                     seed=3) as sim:\n"
        "    c = rtkit.collect('binance', ['BTC-USDT'], url=sim.url, db=Path(d) / 't.sqlite',\n"
        "                      flush_interval_s=0.05)\n"
        "    try:\n"
        "        deadline = time.monotonic() + 20\n"
        "        while c.stats['stored'] < 200 and time.monotonic() < deadline:\n"
        "            time.sleep(0.01)\n"
        "        print(looked.wait(10), c.stats['stored'], c.stats['gaps_open'],\n"
        "              'httpx' in sys.modules, c.backfiller.client)\n"
        "    finally:\n"
        "        c.stop()\n")
    # the thread has looked at the ledger (where it used to have its client already),
    # every trade came without a gap, and nothing of HTTP is loaded
    assert out.split() == ["True", "200", "0", "False", "None"]
