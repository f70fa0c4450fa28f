"""The SQLite sink in a process of its own, so that writing does not compete with receiving.

In one process the receive thread and the writer thread share one interpreter
lock, and sqlite3's ``executemany`` binds every value under it: with a busy
feed the two threads take turns on one core and most rows are written after
the feed has ended (issue 17). With ``writer="process"`` the writer thread
stays (it takes each flush from the pipeline and keeps the accounting), but
hands the rows, pickled in chunks, through a pipe to a child process that owns
the connection — an ordinary :class:`~rtkit.sinks.sqlite.SQLiteSink` — and
answers what it stored: the ticks and the rows of each kind it inserted, and
where the rows it refused one by one were, so the counters stay exact.

The child is a fresh interpreter that runs :func:`main`, not ``multiprocessing``:
no fork of a process that has threads, and no re-import of the user's
``__main__`` (a script without an ``if __name__ == "__main__":`` guard would
start its collector again in the child). The writer thread starts it on the
first ``open`` (``start()`` returns at once) and ends it in ``close``; it ends by
itself when its parent goes (the pipe's end of file; on Linux also
``PR_SET_DEATHSIG``). A child that dies or stops answering is a refused write
like a locked database: ``storage_error``, the rows kept in memory, and a new
child on the retry. Every flush is one transaction in the child, so what a
``kill -9`` of either process leaves on disk is what was committed.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import pickle
import signal
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from rtkit.kinds import get_kind
from rtkit.sinks import RunEnd, RunInfo, SinkRefused
from rtkit.sinks.sqlite import SQLiteSink
from rtkit.store import Inserted, TickStore

#: the writers a collector can have: the thread writes in the collector's process, the
#: process in a child of its own
WRITERS = ("thread", "process")
#: the writer a collector has when none is given
DEFAULT_WRITER = "thread"
#: rows pickled per message: the receive thread gets the interpreter lock between two
#: (each pipe write releases it), so a large flush never holds it for long
CHUNK_ROWS = 4096
#: longest wait for the child's answer (its start and imports, or one flush) before it is
#: ended and the write counted as refused
ANSWER_TIMEOUT_S = 60.0
#: how long ``close`` waits for the child to end after its last answer before killing it
EXIT_WAIT_S = 1.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
#: what the child runs: this module's ``main``, imported from the same folder as the
#: parent's rtkit (first on its path), whatever the current folder holds
_CHILD_CODE = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
               "from rtkit.runtime.writer_process import main; main(sys.argv[1:])")


def sqlite_sink(writer: str | None, path: str | Path, store_type: type[TickStore] = TickStore):
    """The SQLite sink for ``writer`` (``"thread"`` or ``"process"``; None: DEFAULT_WRITER)."""
    writer = DEFAULT_WRITER if writer is None else writer
    if writer == "process":
        return ProcessSink(path, store_type)
    if writer == "thread":
        return SQLiteSink(path, store_type)
    raise ValueError(f"writer must be one of {', '.join(map(repr, WRITERS))}, not {writer!r}")


class ProcessSink:
    """The sink contract (:mod:`rtkit.sinks`), served by an SQLiteSink in a child process."""

    def __init__(self, path: str | Path, store_type: type[TickStore] = TickStore) -> None:
        self.local = SQLiteSink(path, store_type)  # probe() and reader(), in this process
        self.path = self.local.path
        self.where = self.local.where
        self.store_type = store_type
        self._store_name = f"{store_type.__module__}:{store_type.__qualname__}"
        if "<locals>" in self._store_name:
            raise ValueError(f"writer='process' opens the store by name in another process; "
                             f"{self._store_name} has none: define it at a module's top level")
        self._proc: subprocess.Popen | None = None
        self._send_conn: Connection | None = None
        self._answer_conn: Connection | None = None
        self._open = False
        #: the child's process id while it runs (for tests and ``ps``)
        self.pid: int | None = None

    def probe(self) -> None:
        self.local.probe()

    def reader(self) -> TickStore:
        return self.local.reader()

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self, run: RunInfo) -> None:
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        self._call(("open", run))
        self._open = True

    def check(self) -> str | None:
        if not self._open:
            return None
        try:
            problem = self._call(("check",))
        except SinkRefused as exc:
            problem = str(exc)
        if problem:
            self._open = False
        return problem

    def write(self, batch, refused: list):
        """One flush, in one transaction in the child; raises what it raised there."""
        if not self._open:
            raise SinkRefused(f"the database '{self.path}' is not open")
        ticks, rejects, gaps, records = batch
        try:
            self._send(("write",))
            for where, name, rows in (("ticks", "", ticks), ("rejects", "", rejects),
                                      ("gaps", "", gaps),
                                      *(("records", k, v) for k, v in (records or {}).items())):
                for i in range(0, len(rows), CHUNK_ROWS):
                    self._send((where, name, rows[i : i + CHUNK_ROWS]))
        except SinkRefused:
            raise
        except Exception as exc:  # a row pickle cannot take: no row of it was written
            self._end()
            raise SinkRefused(f"{type(exc).__name__}: {exc}") from exc
        ticks_in, kinds, positions = self._call(("end",))
        for table, i, error in positions:
            refused.append((table, _rows_of(batch, table)[i], error))
        return Inserted(ticks_in, kinds)

    def close(self, end: RunEnd | None = None) -> None:
        """Close the run and end the child (killed if it does not end in time)."""
        self._open = False
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(SinkRefused):
                self._call(("close", end), timeout_s=ANSWER_TIMEOUT_S)
        self._end(EXIT_WAIT_S)

    # --- the pipe ---------------------------------------------------------------------
    def _start(self) -> None:
        """A fresh child with its two pipes; it opens the database on ``open``."""
        self._end()
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        package_root = str(Path(__file__).resolve().parents[2])  # the folder holding rtkit/
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD_CODE, package_root, str(to_child_r),
                 str(from_child_w), str(os.getpid()), str(self.path.absolute()),
                 self._store_name],
                pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL)
        except OSError as exc:
            os.close(to_child_w)
            os.close(from_child_r)
            raise SinkRefused(f"cannot start the writer process: {exc}") from exc
        finally:  # the child's ends are the child's: its end of file must be ours to cause
            os.close(to_child_r)
            os.close(from_child_w)
        self.pid = self._proc.pid
        self._send_conn = Connection(to_child_w, readable=False)
        self._answer_conn = Connection(from_child_r, writable=False)

    def _send(self, message: tuple) -> None:
        conn = self._send_conn
        if conn is None:
            raise SinkRefused("the writer process is not running")
        try:
            conn.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))
        except OSError as exc:  # the child is gone (broken pipe)
            raise self._lost(f"{type(exc).__name__}: {exc}") from exc

    def _call(self, message: tuple, timeout_s: float = ANSWER_TIMEOUT_S) -> Any:
        """Send ``message``, wait for the answer: its value, or what the child raised."""
        self._send(message)
        conn = self._answer_conn
        assert conn is not None  # set with _send_conn
        try:
            if not conn.poll(timeout_s):
                raise self._lost(f"no answer within {timeout_s:g} s", exiting=False)
            status, value = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError) as exc:
            raise self._lost(f"{type(exc).__name__}: {exc}" if str(exc) else "") from exc
        if status == "error":
            raise value
        return value

    def _lost(self, why: str, exiting: bool = True) -> SinkRefused:
        """The child died (``exiting``: its exit status is on its way) or hung: end it;
        a refusal that says so (the writer retries with a new one)."""
        code = None
        if exiting and self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self._proc.wait(EXIT_WAIT_S)
        self._end()
        how = (f"ended with exit code {code}" if code is not None and code >= 0
               else f"was killed by signal {-code}" if code is not None else "stopped answering")
        return SinkRefused(f"the writer process {how}{f' ({why})' if why else ''}; "
                           "a new one is started on the next try")

    def _end(self, wait_s: float = 0.0) -> None:
        """Close the pipes and reap the child (killed unless it ends within ``wait_s``)."""
        self._open = False
        for conn in (self._send_conn, self._answer_conn):
            if conn is not None:
                conn.close()
        self._send_conn = self._answer_conn = None
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self.pid = None


def _rows_of(batch, table: str) -> list:
    """The list of ``batch`` that rows of ``table`` come from."""
    ticks, rejects, gaps, records = batch
    lists = {"ticks": ticks, "rejects": rejects, "gaps": gaps}
    if table in lists:
        return lists[table]
    return next(rows for name, rows in (records or {}).items() if get_kind(name).table == table)


# --- the child ------------------------------------------------------------------------------
def _die_with_parent(parent_pid: int) -> None:
    """Linux: be killed when the parent's thread that started us ends; anywhere: end now
    if the parent is already gone (it may have died before the prctl)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        sys.exit(0)


def _store_type(name: str) -> type[TickStore]:
    module, _, qualname = name.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _positions(batch: tuple, refused: list[tuple]) -> list[tuple[str, int, str]]:
    """``(table, row, error)`` as ``(table, index in its list, error)``: what the parent,
    which holds the same rows, maps back to its own."""
    index: dict[str, dict[int, int]] = {}
    out = []
    for table, row, error in refused:
        if table not in index:
            index[table] = {id(r): i for i, r in enumerate(_rows_of(batch, table))}
        out.append((table, index[table][id(row)], error))
    return out


def _answer(conn: Connection, status: str, value: Any) -> None:
    try:
        data = pickle.dumps((status, value), pickle.HIGHEST_PROTOCOL)
    except Exception:  # an exception pickle cannot take: its words are enough
        data = pickle.dumps(("error", SinkRefused(f"{type(value).__name__}: {value}")))
    conn.send_bytes(data)


def _read_batch(requests: Connection) -> tuple:
    """The parts of one flush, up to its ``end``: ``(ticks, rejects, gaps, records)``."""
    ticks: list = []
    rejects: list = []
    gaps: list = []
    records: dict[str, list] = {}
    lists = {"ticks": ticks, "rejects": rejects, "gaps": gaps}
    while (part := pickle.loads(requests.recv_bytes()))[0] != "end":
        where, name, rows = part
        (records.setdefault(name, []) if where == "records" else lists[where]).extend(rows)
    return ticks, rejects, gaps, records or None


def _handle(sink: SQLiteSink, op: str, argument: Any) -> Any:
    """One call on the sink; a write's answer is ``(ticks inserted, rows inserted per
    kind, positions of the refused rows)``."""
    if op == "write":
        refused: list[tuple] = []
        inserted = sink.write(argument, refused)
        return (int(inserted), dict(getattr(inserted, "kinds", {})),
                _positions(argument, refused))
    if op == "open":
        return sink.open(argument)
    if op == "check":
        return sink.check()
    if op == "close":
        return sink.close(argument)
    raise SinkRefused(f"the writer process got an unknown request {op!r}")


def serve(requests: Connection, answers: Connection, sink: SQLiteSink) -> None:
    """Answer the parent's calls on ``sink`` until it closes it or goes away."""
    while True:
        try:
            message = pickle.loads(requests.recv_bytes())
            op = message[0]
            argument = _read_batch(requests) if op == "write" else (*message, None)[1]
        except (EOFError, OSError):  # the parent is gone: what is committed stays
            return
        try:
            status, value = "ok", _handle(sink, op, argument)
        except Exception as exc:  # what the sink raised: the parent raises it in its writer
            status, value = "error", exc
        try:
            _answer(answers, status, value)
        except OSError:
            return
        if op == "close":
            return


def main(argv: list[str]) -> None:
    """``READ_FD WRITE_FD PARENT_PID DB_PATH STORE_TYPE`` (``module:qualname``)."""
    read_fd, write_fd, parent_pid = (int(a) for a in argv[:3])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    _die_with_parent(parent_pid)
    requests = Connection(read_fd, writable=False)
    answers = Connection(write_fd, readable=False)
    sink = SQLiteSink(argv[3], _store_type(argv[4]))
    try:
        serve(requests, answers, sink)
    finally:
        sink.close()
