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
import logging
import os
import pickle
import signal
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from rtkit.sinks import RunEnd, RunInfo, SinkRefused
from rtkit.sinks.sqlite import SQLiteSink
from rtkit.store import TickStore

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
#: how long ``close`` waits for the child to close the run and end before killing it:
#: a collector stopped while its child still starts must still stop within its bound
CLOSE_WAIT_S = 1.0
#: take-overs in a row the child may fail (it cannot start, or open the file) before
#: this process keeps writing, as with writer="thread" (a warning says so)
MAX_REFUSED_HANDOVERS = 3
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
log = logging.getLogger("rtkit")
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
    """The sink contract (:mod:`rtkit.sinks`), served by an SQLiteSink in a child process.

    The child takes a moment to start (a fresh interpreter and its imports: about half
    a second, more on a busy machine), and the flushes must not wait for it: ``open``
    opens the file here, as the writer thread does, and asks the child to take the run
    over. Until the child says it has, flushes are written here; from then on, there.
    A ``close`` before that ends the child at once, so ``stop()`` never waits for it.
    """

    def __init__(self, path: str | Path, store_type: type[TickStore] = TickStore) -> None:
        #: the writing connection in this process until the child takes over; also
        #: ``probe()`` and ``reader()``
        self.local = SQLiteSink(path, store_type)
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
        self._run: RunInfo | None = None
        self._open = False
        self._asked = False  # the child was asked to take the run over, no answer read yet
        self._opened = 0  # how many times the run was opened here (a reopen: a new file)
        self._asked_for = 0  # ... when the child was asked: an answer to an older is stale
        self._child_writes = False  # it has: flushes go to it
        self._refusals = 0  # take-overs in a row that failed
        self._resume_run_id: int | None = None  # the run a lost child was writing
        #: the child's process id while it runs (for tests and ``ps``)
        self.pid: int | None = None

    def probe(self) -> None:
        self.local.probe()

    def reader(self) -> TickStore:
        return self.local.reader()

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def in_child(self) -> bool:
        """Whether the child writes the flushes now (it has taken the run over)."""
        return self._child_writes

    def open(self, run: RunInfo) -> None:
        # raises SinkRefused, as the thread's sink does
        self.local.open(run, self._resume_run_id)
        self._resume_run_id = None
        self._run, self._open, self._child_writes = run, True, False
        self._opened += 1
        if not self._asked:  # else its answer is stale when it comes, and it is asked again
            self._hand_over()

    def check(self) -> str | None:
        if not self._open:
            return None
        if self._ready():
            try:
                problem = self._call(("check",))
            except SinkRefused as exc:
                problem = str(exc)
        else:
            problem = self.local.check()
        if problem:
            self._open = self._child_writes = False
            self.local.close()
        return problem

    def write(self, batch, refused: list):
        """One flush, in one transaction (in the child once it has taken over); raises
        what the write raised."""
        if not self._open:
            raise SinkRefused(f"the database '{self.path}' is not open")
        if not self._ready():
            return self.local.write(batch, refused)
        try:
            self._send(("write", list(batch[3] or {}) if len(batch) > 3 else []))
            for i, rows in enumerate(_lists(batch)):
                for at in range(0, len(rows), CHUNK_ROWS):
                    self._send((i, rows[at : at + CHUNK_ROWS]))
        except SinkRefused:
            raise
        except Exception as exc:  # a row pickle cannot take: no row of it was written
            self._drop_child()
            raise SinkRefused(f"{type(exc).__name__}: {exc}") from exc
        inserted, positions = self._call(("end",))
        lists = _lists(batch)
        for table, where, error in positions:
            refused.append((table, where if type(where) is not tuple  # a copy, when not found
                            else lists[where[0]][where[1]], error))
        return inserted

    def close(self, end: RunEnd | None = None) -> None:
        """Close the run, where it is written; end the child (at once if it has not
        taken over; killed if it has not ended within ``CLOSE_WAIT_S``)."""
        if self._open and self._ready():
            deadline = time.monotonic() + CLOSE_WAIT_S
            with contextlib.suppress(SinkRefused):
                self._call(("close", end), timeout_s=CLOSE_WAIT_S)
            self._end(max(0.0, deadline - time.monotonic()))
        else:
            self._end()
            self.local.close(end)
        self._open = self._child_writes = False

    # --- the take-over --------------------------------------------------------------
    def _hand_over(self) -> None:
        """Ask the child (started now if there is none) to take the open run over."""
        if self._refusals >= MAX_REFUSED_HANDOVERS:
            return  # it cannot: this process writes, as the writer thread would
        try:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            self._send(("open", self._run, self.local.run_id))
            self._asked, self._asked_for = True, self._opened
        except SinkRefused as exc:
            self._refused_handover(str(exc))

    def _ready(self) -> bool:
        """Whether the child writes now; reads its answer to the take-over once it is
        there (without waiting), and asks again after a refusal."""
        if self._child_writes or not self._asked:
            return self._child_writes
        conn = self._answer_conn
        try:
            if conn is None or not conn.poll(0):
                return False
            self._asked = False
            self._answer(0)
        except Exception as exc:  # it could not open the file, or died: ask again
            if self._proc is None:  # died (or could not start): a new one, a few times
                self._refused_handover(f"{type(exc).__name__}: {exc}")
            self._hand_over()
            return False
        if self._asked_for != self._opened:  # the run was opened again since: ask again
            self._hand_over()
            return False
        self._refusals = 0
        self._child_writes = True
        self.local.close()  # the run stays open: the child finishes it
        return True

    def _refused_handover(self, why: str) -> None:
        """A child that could not start or died before taking over: after a few, this
        process keeps writing."""
        self._asked = False
        self._refusals += 1
        if self._refusals == MAX_REFUSED_HANDOVERS:
            log.warning("rtkit: the writer process for '%s' could not take over (%s); "
                        "this process writes instead, as with writer='thread'", self.where, why)
            self._end()

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
        return self._answer(timeout_s)

    def _answer(self, timeout_s: float) -> Any:
        conn = self._answer_conn
        if conn is None:
            raise SinkRefused("the writer process is not running")
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
        a refusal that says so. If it was writing, the sink is closed: the writer opens
        it again, here, and a new child takes over."""
        code = None
        if exiting and self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self._proc.wait(CLOSE_WAIT_S)
        self._drop_child()
        how = (f"ended with exit code {code}" if code is not None and code >= 0
               else f"was killed by signal {-code}" if code is not None else "stopped answering")
        return SinkRefused(f"the writer process {how}{f' ({why})' if why else ''}; "
                           "a new one is started")

    def _drop_child(self) -> None:
        """End the child; if it was writing, the sink is closed, to be opened again here
        with the same run."""
        if self._child_writes:
            self._open = self._child_writes = False
            self._resume_run_id = self.local.run_id
        self._end()

    def _end(self, wait_s: float = 0.0) -> None:
        """Close the pipes and reap the child (killed unless it ends within ``wait_s``)."""
        self._asked = False
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


def _lists(batch) -> list[list]:
    """The lists of rows of a flush, in the order they travel: ticks, rejects, gaps,
    then the rows of each other kind."""
    ticks, rejects, gaps, *more = batch
    records = more[0] if more else None
    return [ticks, rejects, gaps, *(records or {}).values()]


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


def _positions(lists: list[list], refused: list[tuple]) -> list[tuple[str, Any, str]]:
    """``(table, row, error)`` as ``(table, (list, index), error)``: where the parent,
    which holds the same rows, finds its own (a copy of the row if it is in none)."""
    where = {id(row): (i, at) for i, rows in enumerate(lists) for at, row in enumerate(rows)}
    return [(table, where.get(id(row), row), error) for table, row, error in refused]


def _answer(conn: Connection, status: str, value: Any) -> None:
    try:
        data = pickle.dumps((status, value), pickle.HIGHEST_PROTOCOL)
    except Exception:  # an exception pickle cannot take: its words are enough
        data = pickle.dumps(("error", SinkRefused(f"{type(value).__name__}: {value}")))
    conn.send_bytes(data)


def _read_batch(requests: Connection, names: list[str]) -> tuple:
    """The parts of one flush, up to its ``end``: ``(ticks, rejects, gaps, records)``;
    ``names`` are the kinds of the records, in the order their lists travel."""
    lists: list[list] = [[] for _ in range(3 + len(names))]
    while (part := pickle.loads(requests.recv_bytes()))[0] != "end":
        lists[part[0]].extend(part[1])
    return (*lists[:3], dict(zip(names, lists[3:], strict=True)) or None)


def _handle(sink: SQLiteSink, op: str, argument: Any) -> Any:
    """One call on the sink; a write's answer is what the store's write returned and
    where the rows it refused are."""
    if op == "write":
        refused: list[tuple] = []
        inserted = sink.write(argument, refused)
        return inserted, _positions(_lists(argument), refused)
    if op == "open":
        sink.close()  # the parent opened the file again (it had been moved, or a take-over
        return sink.open(*argument)  # was asked again): the run is the one given now
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
            argument = message[1:] if op == "open" else (*message, None)[1]
            if op == "write":
                argument = _read_batch(requests, argument)
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
