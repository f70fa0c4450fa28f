"""Long work shows its progress and stops cleanly (#16 item 7): replay's bar, Ctrl-C
during a replay, SIGTERM to `rtkit sim`. Real subprocesses, real signals, bounded waits."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from rtkit.progress import StopOnInterrupt, bar, watched
from rtkit.replay import replay
from rtkit.sim.record import write_recording

ROOT = Path(__file__).resolve().parent.parent
#: a bar's line: percent, counts, then [elapsed<ETA, rate]
BAR = re.compile(r"replay .*\d+%\|.*\| [\d.]+[kMG]?/[\d.]+[kMG]?B? \[\d\d:\d\d<\d\d:\d\d, +"
                 r"[\d.]+[kMG]?B/s\]")


def _run(args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "rtkit", *args], cwd=ROOT, env=env, **kw)


class _Lines:
    """What a child writes on a pipe, read by a thread, waited for with a bound."""

    def __init__(self, pipe) -> None:
        self.text = ""
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe) -> None:
        while True:
            try:
                chunk = os.read(pipe if isinstance(pipe, int) else pipe.fileno(), 4096)
            except OSError:  # a pty whose other end closed says EIO: the end, as b""
                chunk = b""
            with self._changed:
                self.text += chunk.decode(errors="replace")
                self._changed.notify_all()
            if not chunk:
                return

    def wait_for(self, pattern: str, timeout_s: float = 30.0) -> re.Match:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not (m := re.search(pattern, self.text)):
                left = deadline - time.monotonic()
                assert left > 0, f"no {pattern!r} within {timeout_s} s in: {self.text[-2000:]!r}"
                self._changed.wait(left)
        return m

    def finish(self) -> str:
        self._thread.join(10)
        return self.text


@pytest.fixture(scope="module")
def big_recording(tmp_path_factory) -> tuple[Path, int]:
    """A recording of 200,000 frames (20,000 trades sent ten times over, as after ten
    reconnects with full overlap): a few seconds of replay on a loaded machine."""
    d = tmp_path_factory.mktemp("big")
    small = d / "small.jsonl"
    write_recording(small, trades=20_000, seed=3)
    lines = small.read_bytes().splitlines(keepends=True)
    big = d / "big.jsonl"
    big.write_bytes(b"".join(lines * 10))
    return big, len(lines) * 10


def test_replay_bar_has_rate_and_eta_when_asked(tmp_path, capsys):
    rec = tmp_path / "r.jsonl"
    write_recording(rec, trades=3_000)
    summary = replay(rec, db=tmp_path / "r.sqlite", progress=True)
    err = capsys.readouterr().err
    assert summary["stored"] == 3_000 and "interrupted" not in summary
    assert BAR.search(err), err
    assert "100%" in err  # the bar ends full


def test_no_bar_in_captured_output_unless_asked(tmp_path, capsys):
    rec = tmp_path / "r.jsonl"
    write_recording(rec, trades=3_000)
    assert not watched()  # pytest captures stderr: nobody watches it
    replay(rec, db=tmp_path / "r.sqlite")
    assert capsys.readouterr().err == ""


def test_replay_in_a_terminal_shows_the_bar_and_in_a_pipe_does_not(tmp_path):
    rec = tmp_path / "r.jsonl"
    write_recording(rec, trades=3_000)
    leader, follower = pty.openpty()
    # a terminal of 100 columns (a pty starts with none)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    try:
        child = _run(["replay", str(rec), "--db", str(tmp_path / "tty.sqlite")],
                     stdout=subprocess.PIPE, stderr=follower)
        os.close(follower)
        seen = _Lines(leader)
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        seen.wait_for(r"100%\|")
    finally:
        os.close(leader)
    assert BAR.search(seen.text), seen.text
    assert b"stored 3,000" in out  # the summary stays on stdout
    piped = _run(["replay", str(rec), "--db", str(tmp_path / "pipe.sqlite")],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = piped.communicate(timeout=60)
    assert piped.returncode == 0 and b"%|" not in err and b"stored 3,000" in out


def test_ctrl_c_during_replay_stops_cleanly_with_the_summary_of_what_was_stored(
        tmp_path, big_recording):
    rec, lines = big_recording
    db = tmp_path / "r.sqlite"
    child = _run(["replay", str(rec), "--db", str(db), "--json", "--progress"],
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = _Lines(child.stderr)
    try:
        err.wait_for(r"\b([1-9]|[1-8]\d)%\|")  # under way, far from done
        child.send_signal(signal.SIGINT)
        out = child.stdout.read()
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    text = err.finish()
    assert child.returncode == 130, text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
    assert "interrupted (Ctrl-C)" in text
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["interrupted"] is True and 0 < summary["frames"] < lines
    # the database holds exactly what the summary says, and is whole
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = conn.execute("SELECT count(*) FROM ticks").fetchone()[0]
    assert stored == summary["stored"] > 0
    assert summary["ticks"] == summary["stored"] + summary["duplicates"]


def test_sim_prints_its_summary_on_sigterm_as_on_ctrl_c():
    for sig in (signal.SIGTERM, signal.SIGINT):
        child = _run(["sim", "binance", "--rate", "50"], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)
        out = _Lines(child.stdout)
        try:
            out.wait_for(r"rtkit sim: binance on ws://127\.0\.0\.1:\d+")
            child.send_signal(sig)
            child.wait(30)
        finally:
            if child.poll() is None:
                child.kill()
        text = out.finish()
        err = child.stderr.read().decode()
        assert child.returncode == 0, (sig, err)
        assert "served " in text and "frames by category" in text, (sig, text)
        assert "Traceback" not in err


def test_stop_on_interrupt_turns_the_first_ctrl_c_into_a_request():
    before = signal.getsignal(signal.SIGINT)
    with StopOnInterrupt() as ctrl_c:
        signal.raise_signal(signal.SIGINT)
        assert ctrl_c.requested
        with pytest.raises(KeyboardInterrupt):  # a second one insists
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_a_bar_not_shown_writes_nothing(capsys):
    with bar(10, desc="x", unit="row", show=False) as b:
        b.update(10)
    assert capsys.readouterr().err == ""
