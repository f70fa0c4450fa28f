"""Every Python block of README.md runs, in order, as one notebook would run them.

Blocks written for a real venue are pointed at the local simulator, in one stated
way: in a block that starts no ``Simulator`` itself, each ``rtkit.collect(`` call
becomes ``collect_offline(``, which is ``rtkit.collect`` with ``url=`` a simulator
of that venue on 127.0.0.1 (started on first use). Each rewrite is printed. No
other change is made, and a block that would still reach a real venue (another way
of starting a collector) fails the test; every collector started checks that its
URL is the loopback's before it connects.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import rtkit
from rtkit.collector import Collector
from rtkit.sim import Simulator

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
#: ways a block could start a collector; only rtkit.collect is rewritten
STARTS = re.compile(r"\b(rtkit\.collect|Collector|collect_many|CollectorGroup|onchain\.collect)\(")

pytestmark = pytest.mark.usefixtures("no_thread_leak")


def readme_blocks() -> list[tuple[int, str]]:
    """(line number, code) of every ```python block of the README, in order."""
    text = (ROOT / "README.md").read_text()
    return [(text[:m.start()].count("\n") + 2, m.group(1)) for m in BLOCK.finditer(text)]


def offline(code: str) -> str:
    """The block as the test runs it (see the module docstring)."""
    if "Simulator(" in code:
        return code
    code = code.replace("rtkit.collect(", "collect_offline(")
    left = STARTS.findall(code)
    assert not left, f"a block starts a collector the test cannot point at the simulator: {left}"
    return code


def test_the_readme_has_the_blocks_a_newcomer_needs():
    blocks = readme_blocks()
    assert len(blocks) >= 4
    # the first Python block a reader meets runs offline as written
    assert "Simulator(" in blocks[0][1]


def test_every_python_block_of_the_readme_runs_against_the_simulator(tmp_path, monkeypatch,
                                                                      capsys):
    monkeypatch.chdir(tmp_path)  # the README's relative paths (data/…) land here
    start = Collector.start

    def loopback_only(self):
        assert urlsplit(self.url).hostname == "127.0.0.1", f"{self.url} is not the simulator"
        return start(self)

    monkeypatch.setattr(Collector, "start", loopback_only)
    simulators: dict[str, Simulator] = {}

    def collect_offline(venue, symbols, **kw):
        if venue not in simulators:
            simulators[venue] = Simulator(venue, rate=500, seed=1).start()
        return rtkit.collect(venue, symbols, url=simulators[venue].url, **kw)

    namespace: dict = {"collect_offline": collect_offline}
    ran = []
    try:
        for line, code in readme_blocks():
            runnable = offline(code)
            if runnable != code:
                with capsys.disabled():
                    print(f"\nREADME.md:{line}: rtkit.collect( → collect_offline( "
                          "(url= a local simulator)")
            exec(compile(runnable, f"README.md:{line}", "exec"), namespace)
            ran.append(line)
    finally:
        rtkit.stop_all()
        for sim in simulators.values():
            sim.stop()
    assert len(ran) == len(readme_blocks())
    assert simulators  # the real-venue blocks ran, on the simulator
