"""The writer process: what it runs (:func:`main`), and the parent's handle on it.

The child is a fresh interpreter, not ``multiprocessing``: no fork of a process
that has threads, and no re-import of the user's ``__main__`` (a script without
an ``if __name__ == "__main__":`` guard would start its collector again in the
child). It serves one :class:`~rtkit.sinks.sqlite.SQLiteSink` over two pipes,
one call at a time: each message is a pickled tuple, and each call gets one
answer, ``("ok", value)`` or ``("error", exception)``. A flush travels as
``("write", kinds, lists, more)``, then ``more`` messages with the rest of its
rows when it is large, the trades' first; SQLite inserts each part of the trades
while the next is on its way, in the flush's one transaction. The answer is what
the store's write returned and where the rows it refused are.

Its garbage collector runs between calls, not during them: unpickling a flush makes
three containers a tick, and the collections they set off while the flush is read
took 1.3 µs a tick, as long as the rest of the child's work (issue 17). Between
calls it collects what the last one left, with the modules it imported at start
frozen out of the collector's view.

It ends when the parent closes the sink, and by itself when the parent goes:
the pipe's end of file, and on Linux ``PR_SET_DEATHSIG`` (its ends of the pipes
are its own, so no other child of the parent keeps them open). Ctrl-C is the
parent's to handle: the child ignores SIGINT.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import os
import pickle
import signal
import sys
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from rtkit.kinds.trades import TradeRows
from rtkit.sinks import SinkRefused
from rtkit.sinks.sqlite import SQLiteSink
from rtkit.store import TickParts, TickStore

#: rows pickled per message. Each pipe write lets the interpreter lock go, and taking it
#: back waits for the receive thread, up to a switch interval (5 ms): 4,096-row messages
#: made a 50k flush wait 13 times (issue 17). Each pickle holds the lock, and the receive
#: thread waits: 16,384 trades of a trade a frame take ~9 ms. A large flush (after a
#: storage stall) goes in as many parts, so its pickle never doubles the rows' memory
CHUNK_ROWS = 1 << 14
#: rows pickled per message of a slower feed's flush (rtkit.sinks.sqlite.FeedPace; its
#: receive thread is mostly waiting for the socket): each pickle holds the lock ~0.5 ms,
#: not ~9, so a frame that comes meanwhile waits that long (the receive → ``.df`` p99 at
#: 20k frames/s)
SMALL_FLUSH_MESSAGE_ROWS = 1024
#: how long the parent waits for an ended child's exit status, to say how it ended
EXIT_STATUS_WAIT_S = 1.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
#: what the child runs: the bootstrap (its path comes first), which imports this module's
#: ``main`` from the same folder as the parent's rtkit (first on its path), whatever the
#: current folder holds, without running the package's ``__init__`` (pandas and all)
_CHILD_CODE = "import sys, runpy; runpy.run_path(sys.argv.pop(1), run_name='__main__')"
#: the bootstrap (:mod:`rtkit.runtime.writer_boot`), run by its path
_BOOT = Path(__file__).resolve().with_name("writer_boot.py")


class ChildLost(SinkRefused):
    """The writer process died or stopped answering; the message says how."""


def _pipe() -> tuple[int, int]:
    """A pipe to or from the child; none to be had (the process is out of file
    descriptors) is a child that cannot start, not a failure of the writer thread."""
    try:
        return os.pipe()
    except OSError as exc:
        raise SinkRefused(f"cannot start the writer process: {exc}") from exc


class WriterChild:
    """A writer process, started now, and the two pipes to it."""

    def __init__(self, path: Path, store_type: type[TickStore]) -> None:
        import subprocess  # this process's side: the child itself starts none

        to_child_r, to_child_w = _pipe()
        try:
            from_child_r, from_child_w = _pipe()
        except SinkRefused:
            os.close(to_child_r)
            os.close(to_child_w)
            raise
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _CHILD_CODE, str(_BOOT), str(to_child_r),
                 str(from_child_w), str(os.getpid()), str(path.absolute()),
                 f"{store_type.__module__}:{store_type.__qualname__}"],
                pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL)
        except OSError as exc:
            os.close(to_child_w)
            os.close(from_child_r)
            raise SinkRefused(f"cannot start the writer process: {exc}") from exc
        finally:  # the child's ends are the child's: its end of file must be ours to cause
            os.close(to_child_r)
            os.close(from_child_w)
        self.pid = self.proc.pid
        self._requests = Connection(to_child_w, readable=False)
        self._answers = Connection(from_child_r, writable=False)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def send(self, message: tuple) -> None:
        try:
            self._requests.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))
        except OSError as exc:  # gone (broken pipe), or closed by end()
            raise self._lost(f"{type(exc).__name__}: {exc}") from exc

    def send_rows(self, kinds: list[str], lists: list[Sequence], timeout_s: float,
                  slow: bool = False) -> None:
        """One flush's rows, in one message unless it is large (more than CHUNK_ROWS, or
        SMALL_FLUSH_MESSAGE_ROWS for a ``slow`` feed's); ``answer`` then says what the
        child wrote.

        The child inserts a part while the next is sent, so a child whose SQLite stalls
        stops reading and the pipe fills: past ``timeout_s`` it is killed (ChildLost),
        as ``answer`` would end it, rather than waited for without end."""
        most = min(CHUNK_ROWS, SMALL_FLUSH_MESSAGE_ROWS) if slow else CHUNK_ROWS
        parts = [(i, part) for i, rows in enumerate(lists) for part in _parts(rows, most)]
        first: list[Sequence] = [[] for _ in lists]
        size = 0
        # one part of each list at most: a second would replace the first
        while parts and not first[parts[0][0]] and size + len(parts[0][1]) <= most:
            i, part = parts.pop(0)
            first[i], size = part, size + len(part)
        self.send(("write", kinds, first, len(parts)))
        if not parts:
            return
        stalled = threading.Event()

        def kill() -> None:
            stalled.set()
            self.proc.kill()

        watchdog = threading.Timer(timeout_s, kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            for part in parts:
                self.send(part)
        except ChildLost as exc:
            if not stalled.is_set():
                raise
            raise ChildLost(f"the writer process stopped reading a flush for {timeout_s:g} s "
                            "and was killed; a new one is started") from exc
        finally:
            watchdog.cancel()
            watchdog.join()

    def has_answer(self) -> bool:
        """Whether an answer (or the end of the pipe) is there to read, without waiting."""
        try:
            return self._answers.poll(0)
        except OSError:
            return True  # closed: reading says so

    def answer(self, timeout_s: float) -> Any:
        """The next answer's value; raises what the child raised, or ChildLost."""
        try:
            if not self._answers.poll(timeout_s):
                raise self._lost(f"no answer within {timeout_s:g} s", exited=False)
            status, value = pickle.loads(self._answers.recv_bytes())
        except (EOFError, OSError) as exc:
            raise self._lost(f"{type(exc).__name__}: {exc}" if str(exc) else "") from exc
        if status == "error":
            raise value
        return value

    def call(self, message: tuple, timeout_s: float) -> Any:
        self.send(message)
        return self.answer(timeout_s)

    def end(self, wait_s: float = 0.0) -> int:
        """Close the pipes, reap the child (killed unless it ends within ``wait_s``);
        returns its exit status."""
        self._requests.close()
        self._answers.close()
        import subprocess

        try:
            return self.proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def _lost(self, why: str, exited: bool = True) -> ChildLost:
        """End the child; ChildLost says how it ended (``exited``: its status is coming)."""
        code = self.end(EXIT_STATUS_WAIT_S if exited else 0.0)
        how = ("stopped answering" if not exited else f"ended with exit code {code}"
               if code >= 0 else f"was killed by signal {-code}")
        return ChildLost(f"the writer process {how}{f' ({why})' if why else ''}; "
                         "a new one is started")


def _parts(rows: Sequence, most: int = CHUNK_ROWS) -> list:
    """``rows`` in parts of up to ``most`` rows: a flush's trades in runs of whole
    entries (``TradeRows.packed``; an entry larger than ``most`` is a part of its own),
    sent as the ring's ticks and made into rows by the child; a list's rows by slicing."""
    if not rows:
        return []
    if len(rows) <= most:
        return [rows]
    if not isinstance(rows, TradeRows):
        return [rows[at : at + most] for at in range(0, len(rows), most)]
    # each part but the last is full, so no two parts of a list fit in one message
    return [TradeRows(rows.venue, run) for run in rows.packed(most)]


def batch_lists(batch) -> list[Sequence]:
    """The lists of rows of a flush, in the order they travel: ticks, rejects, gaps,
    then the rows of each other kind."""
    ticks, rejects, gaps, *more = batch
    records = more[0] if more else None
    return [ticks, rejects, gaps, *(records or {}).values()]


# --- in the child ------------------------------------------------------------------------
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


def _positions(lists: list[Sequence], refused: list[tuple]) -> list[tuple[str, Any, str]]:
    """``(table, row, error)`` as ``(table, (list, index), error)``: where the parent,
    which holds the same rows, finds its own (a copy of the row if it is in none)."""
    if not refused:
        return []
    where = {id(row): (i, at) for i, rows in enumerate(lists) for at, row in enumerate(rows)}
    return [(table, where.get(id(row), row), error) for table, row, error in refused]


def _answer(conn: Connection, status: str, value: Any) -> None:
    try:
        data = pickle.dumps((status, value), pickle.HIGHEST_PROTOCOL)
    except Exception:  # an exception pickle cannot take: its words are enough
        data = pickle.dumps(("error", SinkRefused(f"{type(value).__name__}: {value}")))
    conn.send_bytes(data)


class _ParentGone(Exception):
    """The pipe from the parent ended in the middle of a flush: nothing of it is written."""


class _Arriving:
    """One flush as its messages arrive: the first message's lists, then ``more`` parts.

    With ``stream``, the trades are a :class:`~rtkit.store.TickParts` whose parts are
    read from the pipe as the store asks for them, so that SQLite inserts a part while
    the parent pickles and sends the next; the other lists' parts, which come after
    the trades', are read once the trades are all in. ``finish`` reads what the write
    did not (it failed, or the store type reads the trades its own way) before the
    answer goes back. ``lists`` hold every row read, the same objects the store saw.
    """

    def __init__(self, requests: Connection, kinds: list[str], first: list, more: int,
                 stream: bool) -> None:
        self._requests, self._more = requests, more
        self.lists: list[list] = [rows.rows() if isinstance(rows, TradeRows) else list(rows)
                                  for rows in first]
        ticks: TickParts | list
        if stream and more:
            ticks = TickParts(self._tick_parts())
        else:
            self.finish()
            ticks = self.lists[0]
        # rejects, gaps and records are the lists themselves, extended as their parts come
        lists = self.lists
        self.batch = (ticks, lists[1], lists[2],
                      dict(zip(kinds, lists[3:], strict=True)) or None)

    def _next(self) -> tuple[int, list]:
        try:
            data = self._requests.recv_bytes()
        except (EOFError, OSError) as exc:
            raise _ParentGone(str(exc)) from exc
        self._more -= 1  # off the pipe, even if it cannot be read: ``finish`` reads the rest
        i, part = pickle.loads(data)
        return i, part.rows() if isinstance(part, TradeRows) else list(part)

    def _tick_parts(self):
        trades = self.lists[0]
        yield trades[:]  # a copy: the parts after it are added to the list itself
        while self._more:
            i, rows = self._next()
            self.lists[i] += rows
            if i != 0:  # the trades are all in: the other lists' parts, before they are written
                self.finish()
                return
            yield rows

    def finish(self) -> None:
        """Read the parts still in the pipe (raises _ParentGone)."""
        while self._more:
            i, rows = self._next()
            self.lists[i] += rows


def _handle(sink: SQLiteSink, op: str, argument: Any) -> Any:
    """One call on the sink (raises _ParentGone if the parent went during a write)."""
    if op == "write":
        refused: list[tuple] = []
        try:
            inserted = sink.write(argument.batch, refused)
        finally:  # a write that failed leaves parts in the pipe: the next call is after them
            argument.finish()
        return inserted, _positions(argument.lists, refused)
    if op == "open":
        sink.close()  # the parent opened the file again (it had been moved, or a take-over
        return sink.open(*argument)  # was asked again): the run is the one given now
    if op == "check":
        return sink.check()
    if op == "close":
        return sink.close(argument)
    raise SinkRefused(f"the writer process got an unknown request {op!r}")


def serve(requests: Connection, answers: Connection, sink: SQLiteSink) -> None:
    """Answer the parent's calls on ``sink`` until it closes it or goes away; after
    each answer, what the call left is collected (see the module's doc)."""
    while True:
        try:
            message = pickle.loads(requests.recv_bytes())
            op = message[0]
            argument = message[1:] if op == "open" else (*message, None)[1]
            if op == "write":
                argument = _Arriving(requests, message[1], message[2], message[3],
                                     stream=sink.store_type.write is TickStore.write)
        except (EOFError, OSError, _ParentGone):  # the parent is gone: what is committed stays
            return
        try:
            status, value = "ok", _handle(sink, op, argument)
        except _ParentGone:  # in the middle of a write, which was rolled back
            return
        except Exception as exc:  # what the sink raised: the parent raises it in its writer
            status, value = "error", exc
        try:
            _answer(answers, status, value)
        except OSError:
            return
        if op == "close":
            return
        message = argument = value = None  # the flush's rows are gone before the collection
        gc.collect()


def main(argv: list[str]) -> None:
    """``READ_FD WRITE_FD PARENT_PID DB_PATH STORE_TYPE`` (``module:qualname``)."""
    read_fd, write_fd, parent_pid = (int(a) for a in argv[:3])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    _die_with_parent(parent_pid)
    requests = Connection(read_fd, writable=False)
    answers = Connection(write_fd, readable=False)
    store_type = _store_type(argv[4])
    sink = SQLiteSink(argv[3], store_type)
    gc.disable()  # collected between calls instead (see the module's doc)
    gc.freeze()  # what the start-up made lives as long as the child: never looked at again
    try:
        serve(requests, answers, sink)
    finally:
        sink.close()
