"""``rtkit collect --record`` run again on the same file: after a ``kill -9`` it
leaves the damaged recording as it is and says where it records instead; after
a clean stop it says it appends. A run that ends ``failed`` says why."""

from __future__ import annotations

import functools
import json
import subprocess
import sys

import pytest

import rtkit
from rtkit import cli
from rtkit.sim import Faults, Simulator
from rtkit.sim.record import write_recording
from tests.test_crash import RATE, collect_then_kill

pytestmark = pytest.mark.usefixtures("no_thread_leak")


def rtkit_cli(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtkit", *map(str, argv)],
                          capture_output=True, text=True, timeout=60)


def test_a_restart_after_kill_9_records_beside_the_damaged_gzip(tmp_path):
    run = collect_then_kill(tmp_path, "raw.jsonl.gz")
    damaged = run["record"].read_bytes()
    with Simulator("binance", rate=RATE, seed=8) as sim:
        again = rtkit_cli("collect", "binance", "BTC-USDT", "--url", sim.url, "--db",
                          tmp_path / "again.sqlite", "--duration", "1.5", "--record",
                          run["record"], "--json")
    assert again.returncode == 0, again.stderr
    assert "does not end cleanly" in again.stderr and "raw.1.jsonl.gz" in again.stderr
    assert run["record"].read_bytes() == damaged  # nothing glued after the cut member
    # the killed run's recording replays up to the cut, with a one-line warning
    replayed = rtkit_cli("replay", run["record"], "--db", tmp_path / "r1.sqlite", "--json")
    assert replayed.returncode == 0 and "Traceback" not in replayed.stderr
    assert "cut short or damaged" in replayed.stderr
    assert json.loads(replayed.stdout.splitlines()[-1])["stored"] >= run["visible"]
    # and the new run's, beside it, holds every tick that run stored
    stored_again = json.loads(again.stdout.splitlines()[-1])["stored"]
    beside = rtkit.replay(tmp_path / "raw.1.jsonl.gz", db=tmp_path / "r2.sqlite")
    assert stored_again > 0 and beside["stored"] >= stored_again


def test_collect_says_it_appends_to_a_clean_recording(tmp_path, capsys):
    record = tmp_path / "run.jsonl.gz"
    first = write_recording(record, trades=50, seed=5)
    with Simulator("binance", rate=500, seed=8) as sim:
        code = cli.main(["collect", "binance", "BTC-USDT", "--url", sim.url, "--db",
                         str(tmp_path / "t.sqlite"), "--duration", "0.5", "--record",
                         str(record)])
    assert code == 0
    assert f"appending to the recording '{record}'" in capsys.readouterr().err
    s = rtkit.replay(record, db=tmp_path / "replayed.sqlite")
    assert s["connections"] == 2 and s["frames"] > first["frames"]


def test_collect_prints_the_reason_of_a_failed_run(tmp_path, capsys, monkeypatch):
    # quick sessions and retries, so the run fails in a second instead of a minute
    monkeypatch.setattr(cli, "Collector", functools.partial(
        cli.Collector, stale_after_s=0.3, backoff_initial_s=0.05))
    faults = Faults(reject_symbols=("DOGE-USDT",))
    with Simulator("binance", rate=100, seed=1, faults=faults) as sim:
        code = cli.main(["collect", "binance", "DOGE-USDT", "--url", sim.url, "--db",
                         str(tmp_path / "t.sqlite"), "--duration", "30"])
    assert code == 1
    err = capsys.readouterr().err
    assert "rtkit collect: failed: venue keeps refusing the subscription" in err
    assert "invalid symbol DOGE-USDT" in err
