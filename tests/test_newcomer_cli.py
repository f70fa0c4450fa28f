"""A new user's first contact with the CLI and the API (issue #16 items 3, 5, 6)."""

from __future__ import annotations

import inspect
import io
import socket

import pytest
from conftest import wait_for

import rtkit
from rtkit.cli import _Progress, _venue_option, main
from rtkit.collector import Collector
from rtkit.replay import replay
from rtkit.sim import Simulator
from rtkit.store import TickStore


def _closed_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_name_that_does_not_resolve_is_cannot_reach_not_connection_lost(db, monkeypatch):
    def no_dns(*_args, **_kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)  # no DNS query leaves the process
    c = Collector("binance", ["BTC-USDT"], url="ws://exchange.invalid:9/ws", db=db,
                  backoff_initial_s=0.05, backoff_max_s=0.1)
    c.start()
    try:
        wait_for(lambda: str(c.status) == "backoff")
        reason = c.status.reason
    finally:
        c.stop()
    assert "cannot reach exchange.invalid: name not resolved" in reason
    assert "connection lost" not in reason and c.connections == 0


def test_cli_collect_that_never_connected_exits_non_zero_with_the_reason(db, capsys):
    port = _closed_loopback_port()
    code = main(["collect", "binance", "BTC-USDT", "--url", f"ws://127.0.0.1:{port}/ws",
                 "--duration", "2", "--db", str(db)])
    err = capsys.readouterr().err
    assert code != 0
    assert "never connected" in err and "cannot reach 127.0.0.1: connection refused" in err


def test_the_progress_line_says_why_it_backs_off():
    out = io.StringIO()
    stats = {"status": "backoff", "ticks": 0, "ticks_per_s": 0.0, "stored": 0, "pending": 0,
             "rejected": 0, "reconnects": 3,
             "status_reason": "retry in 1.2s after: cannot reach x.invalid: name not resolved "
                              + "and a long tail " * 20}
    _Progress(out).show(stats, force=True)
    line = out.getvalue().strip()
    assert "cannot reach x.invalid: name not resolved" in line
    assert len(line) < 220


def test_cli_errors_name_options_not_keyword_arguments(tmp_path, capsys):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    code = main(["collect", "binance", "BTC-USDT", "--duration", "0.1",
                 "--db", str(not_a_folder / "ticks.sqlite")])
    err = capsys.readouterr().err
    assert code == 2
    assert "--db" in err and "db=" not in err


def test_a_tilde_in_db_record_and_lake_is_the_home_folder(tmp_path, monkeypatch):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    c = Collector("binance", ["BTC-USDT"], url="ws://127.0.0.1:9/ws", db="~/x.sqlite",
                  record_raw="~/raw.jsonl", lake="~/lake")
    assert c.db == home / "x.sqlite" and (home / "x.sqlite").exists()
    assert c.record_raw == home / "raw.jsonl" and (home / "lake").is_dir()
    with TickStore("~/t.sqlite") as store:
        assert store.path == home / "t.sqlite"
    recording = home / "empty.jsonl"
    recording.write_text("")
    assert replay("~/empty.jsonl", db="~/r.sqlite", lake="~/lake2")["db"] == str(home / "r.sqlite")
    assert not (cwd / "~").exists()


def test_replay_writes_its_own_default_file_not_the_collectors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.jsonl").write_text("")
    assert main(["replay", "empty.jsonl"]) == 0
    assert (tmp_path / "data" / "replay.sqlite").exists()
    assert not (tmp_path / "data" / "ticks.sqlite").exists()
    assert "data/replay.sqlite" in capsys.readouterr().out


def test_help_is_plain_text_with_a_version_and_the_db_default(capsys):
    helps = (["--help"], ["collect", "--help"], ["replay", "--help"], ["sim", "binance", "--help"])
    for argv in helps:
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        assert "``" not in out, argv
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"rtkit {rtkit.__version__}"
    with pytest.raises(SystemExit):
        main(["collect", "--help"])
    assert "(default: data/ticks.sqlite)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["sim", "binance", "--help"])
    sim_help = capsys.readouterr().out
    assert "--throttle-frames-per-s RATE" in sim_help and "--refuse-for-s SECONDS" in sim_help


def test_name_and_venue_options_come_from_the_command_line(db, capsys):
    with Simulator("binance", rate=200, seed=1) as sim:
        code = main(["collect", "binance", "BTC-USDT", "--url", sim.url, "--duration", "1",
                     "--db", str(db), "--name", "mine", "--option", "channel=trade"])
    assert code == 0, capsys.readouterr().err
    with TickStore(db, readonly=True) as store:
        names = [n for (n,) in store.conn.execute("SELECT name FROM runs")]
    assert names == ["mine"]
    typo = ["collect", "binance", "BTC-USDT", "--db", str(db), "--option", "chanel=trade"]
    assert main(typo) == 2
    assert "did you mean 'channel'?" in capsys.readouterr().err
    assert _venue_option("ping_interval_s=2.5") == ("ping_interval_s", 2.5)
    assert _venue_option("ids_consecutive=false") == ("ids_consecutive", False)
    assert _venue_option("channel=aggTrade") == ("channel", "aggTrade")


def test_collect_shows_the_collectors_own_signature():
    parameters = inspect.signature(rtkit.collect).parameters
    assert list(parameters)[:4] == ["venue", "symbols", "db", "url"]
    assert "backoff_max_s" in parameters and "kwargs" not in parameters
