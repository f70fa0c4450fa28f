"""Collector: live trades from one venue, in a background thread, into a ring and SQLite.

Two daemon threads per collector, each the only writer of what it owns:

* the **receive thread** owns the WebSocket (websocket-client's ``WebSocket``
  object, driven by our own loop so reconnects, backoff, keep-alives and the
  no-data watchdog are ours), and feeds every frame through the venue adapter
  and validation into the ring buffer and the pending batch;
* the **writer thread** owns the SQLite connection and flushes the pending
  batch every ``flush_interval_s`` (sooner when it grows large), in one
  transaction, retrying when the database is busy.

``start()`` returns at once; ``stop()`` returns within about two seconds after
a final flush, and joins both threads. Nothing here prints or displays: the
state is read from ``.status``, ``.stats``, ``.df`` and the ``rtkit`` logger.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import random
import socket
import sqlite3
import threading
import time
from collections import deque
from pathlib import Path

import pandas as pd
import websocket

from rtkit.buffer import DEFAULT_CAPACITY, RingBuffer
from rtkit.params import checked
from rtkit.pipeline import DEFAULT_MAX_FRAME_BYTES, DEFAULT_PENDING_LIMIT, Pipeline, quote
from rtkit.recording import RecordingWriter, recording_path
from rtkit.redact import redactor_for
from rtkit.store import DEFAULT_DB, StoreError, TickStore
from rtkit.validate import AnomalyFilter, ws_url
from rtkit.venues import Adapter, get_adapter
from rtkit.wsconnect import open_websocket
from rtkit.wsframes import BINARY, CLOSE, PING, TEXT, TOO_LARGE, FrameReader, ProtocolError

log = logging.getLogger("rtkit")

STATES = ("idle", "connecting", "live", "stale", "backoff", "storage_error", "stopping",
          "stopped", "failed")
#: pending ticks that wake the writer before its interval is up. Each flush costs the
#: receive thread some GIL time; few large flushes measured a lower p99 receive
#: latency at 20k frames/s (0.2-0.8 ms) than many small ones (5k: 2.3-2.6 ms)
_FLUSH_BATCH = 50_000
#: how long the receive socket blocks before the loop looks at its clocks
_RECV_TIMEOUT_S = 0.5
#: bytes asked of the socket per read: hundreds of trade frames at a time
_RECV_BYTES = 1 << 18
#: connections in a row that end with a venue error and no tick before giving up
_MAX_FUTILE_CONNECTIONS = 3
#: how long one write waits for another process's lock before it counts as refused
_BUSY_TIMEOUT_S = 0.5
#: pause after a refused write, doubled up to the maximum while refusals go on
_RETRY_FIRST_S, _RETRY_MAX_S = 0.1, 2.0

#: ``.status.reason`` while stop() was asked for but the threads have not ended yet
_STILL_FINISHING = ("threads still finishing (a connect in progress or the final flush); "
                    "call stop() again to wait for them")

_running: dict[str, Collector] = {}
_running_lock = threading.Lock()


class Status(str):
    """The collector's state (one of STATES); ``.reason`` says why, when it matters."""

    reason: str

    def __new__(cls, state: str, reason: str = "") -> Status:
        obj = super().__new__(cls, state)
        obj.reason = reason
        return obj

    def __repr__(self) -> str:
        return f"{str(self)!r} ({self.reason})" if self.reason else repr(str(self))


def stop_all() -> None:
    """Stop every running collector (re-running a notebook from the top, or at exit)."""
    with _running_lock:
        collectors = list(_running.values())
    for c in collectors:
        c.stop()


atexit.register(stop_all)


class Collector:
    """Real-time trades of ``symbols`` on ``venue``, kept in memory and in SQLite.

    ``symbols`` are normalised (``BTC-USDT``) or in the venue's own form.
    ``url`` replaces the venue's public ``wss://`` endpoint (a simulator, a
    testnet, a proxy); keys in it (user info, query values, path tokens) are
    used to connect but never stored or shown: ``runs.url``, ``.status``,
    ``stats`` and the log carry ``redacted_url``. ``record_raw`` names a
    ``.jsonl``/``.jsonl.gz`` file that receives every frame for exact replay.
    ``name`` (default: venue and symbols) identifies the collector: starting
    one stops a running one of the same name, so re-running a notebook cell
    never leaves two writers. A numeric parameter outside its range
    (``rtkit.params.RANGES``) is a ValueError that names the range. Remaining
    keyword arguments are the venue adapter's options. ``venue`` may also be
    an adapter instance (``rtkit.onchain`` passes its own).
    """

    #: what turns frames into rows and where the writer puts them; a collector of
    #: something other than trades (``rtkit.onchain.ChainCollector``) names its own pair
    pipeline_type: type[Pipeline] = Pipeline
    store_type: type[TickStore] = TickStore

    def __init__(
        self,
        venue: str | Adapter,
        symbols: list[str] | str,
        *,
        db: str | Path = DEFAULT_DB,
        url: str | None = None,
        capacity: int = DEFAULT_CAPACITY,
        flush_interval_s: float = 1.0,
        record_raw: str | Path | None = None,
        name: str | None = None,
        anomaly: AnomalyFilter | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        pending_limit: int = DEFAULT_PENDING_LIMIT,
        stale_after_s: float | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        sslopt: dict | None = None,
        **venue_options,
    ) -> None:
        config = {k: v for k, v in locals().items() if k not in ("self", "venue_options")}
        self._config = {**config, **venue_options}  # what again() rebuilds from
        self.adapter = venue if isinstance(venue, Adapter) else get_adapter(venue, **venue_options)
        if isinstance(symbols, str):
            symbols = [symbols]
        if not symbols:
            raise ValueError("give at least one symbol, e.g. ['BTC-USDT']")
        self.symbols = list(dict.fromkeys(self.adapter.normalise_symbol(s) for s in symbols))
        for parameter in ("capacity", "flush_interval_s", "max_frame_bytes", "pending_limit",
                          "backoff_initial_s", "backoff_max_s", "connect_timeout_s"):
            checked(parameter, config[parameter])
        if stale_after_s is not None:
            checked("stale_after_s", stale_after_s)
        if url is not None:
            ws_url(url)
        self.venue = self.adapter.name
        self.url = self.adapter.url(url, self.symbols)  # as given: what the socket connects to
        self._redact = redactor_for(self.url)
        #: the URL without its secrets: what runs.url, .status.reason and the log show
        self.redacted_url = self._redact.redacted_url
        self.db = Path(db)
        self.store_type(self.db).close()  # fail now, in the caller's cell, if it cannot be written
        self.name = name or f"{self.venue}:{','.join(self.symbols)}"
        self.flush_interval_s = flush_interval_s
        self.record_raw = recording_path(record_raw) if record_raw else None  # fail now too
        self.stale_after_s = stale_after_s or self.adapter.stale_after_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.connect_timeout_s = connect_timeout_s
        self.sslopt = sslopt
        self.ring = RingBuffer(capacity)
        self.pipeline = self.pipeline_type(self.adapter, self.ring, anomaly=anomaly,
                                           max_frame_bytes=max_frame_bytes,
                                           pending_limit=pending_limit, symbols=self.symbols)
        self._status = Status("idle")
        self.last_error = ""
        self.reconnects = 0
        self.connections = 0
        self.started_at_ns: int | None = None
        self.stopped_at_ns: int | None = None
        self._stop = threading.Event()
        self._flush_now = threading.Event()
        self._recv_thread: threading.Thread | None = None
        self._write_thread: threading.Thread | None = None
        self._threads_left = 0  # of the two, guarded by _running_lock
        self._ws: websocket.WebSocket | None = None
        self._run_id: int | None = None
        self._rates: deque[tuple[float, int, int]] = deque(maxlen=11)
        self._futile = 0
        self._venue_errors = 0
        self._recorder: RecordingWriter | None = None
        # written by the writer thread
        self.flush_failures = 0
        self._storage_problem = ""  # what the database said, while it refuses writes
        self._storage_verdict: Status | None = None  # the writer's final word, when it failed
        self._db_identity: tuple[int, int] | None = None
        self._refused_tables: set[str] = set()  # tables whose refused rows were logged

    # --- lifecycle -----------------------------------------------------------------
    def start(self) -> Collector:
        """Start collecting in the background and return at once."""
        if self.running:
            return self
        if self._recv_thread is not None:
            raise RuntimeError(
                f"collector {self.name!r} was stopped; create a new Collector (or call "
                "rtkit.collect again) to collect again"
            )
        with _running_lock:
            previous = _running.get(self.name)
        if previous is not None and previous is not self:
            log.warning("rtkit: a collector named %r is running (writing to %s); stopping it "
                        "first. Pass name= to run both.", self.name, previous.db)
            previous.stop()
        self.started_at_ns = time.time_ns()
        self._set_status("connecting")
        self._write_thread = threading.Thread(target=self._thread_body, args=(self._write_loop,),
                                              daemon=True, name=f"rtkit-write-{self.name}")
        self._recv_thread = threading.Thread(target=self._thread_body, args=(self._receive_loop,),
                                             daemon=True, name=f"rtkit-recv-{self.name}")
        with _running_lock:
            self._threads_left = 2
            _running[self.name] = self
        self._recv_thread.start()
        self._write_thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> Collector:
        """Stop, flush what is pending and join the threads; idempotent.

        The stop is requested before anything waits, so a Ctrl-C while it waits
        still ends the collector: the threads finish on their own, ``.status``
        says ``stopping`` until they have, then ``stopped``, and the last thread
        to end takes the collector out of the registry; ``stop()`` again waits.
        """
        deadline = time.monotonic() + timeout_s
        self._stop.set()
        try:
            self._abort_socket()
            for thread in (self._recv_thread, self._write_thread):
                if thread is not None and thread is not threading.current_thread():
                    self._flush_now.set()
                    thread.join(max(0.05, deadline - time.monotonic()))
        finally:
            self._flush_now.set()
            if not self.running:
                self._unregister()
                if self._status not in ("failed", "stopped"):
                    self._set_status("stopped")
        if self.running:
            # a connect still in progress, or a long final flush: stay registered so that
            # stop_all() (and the exit handler) wait for it, and say so
            self._set_status("stopping", _STILL_FINISHING)
            log.warning("rtkit: %s: %s", self.name, self._status.reason)
        return self

    def _thread_body(self, body) -> None:
        """Run one of the two threads; the last to end takes the collector out of the
        registry, whether ``stop()`` waited for it or was interrupted."""
        try:
            body()
        finally:
            with _running_lock:
                self._threads_left -= 1
                last = self._threads_left == 0
            if last:
                self._unregister()

    def _unregister(self) -> None:
        with _running_lock:
            if _running.get(self.name) is self:
                del _running[self.name]

    close = stop

    def again(self) -> Collector:
        """A new, unstarted collector with this one's configuration: a collector
        runs once, so this is how a notebook's Start button starts it again."""
        clone = type(self).__new__(type(self))
        Collector.__init__(clone, **self._config)
        return clone

    @property
    def running(self) -> bool:
        return any(t is not None and t.is_alive() for t in (self._recv_thread, self._write_thread))

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- what a notebook reads ---------------------------------------------------------
    @property
    def df(self) -> pd.DataFrame:
        """A fresh DataFrame of every tick in the ring, oldest first."""
        return self.ring.snapshot()

    def tail(self, n: int = 10) -> pd.DataFrame:
        """The newest ``n`` ticks."""
        return self.ring.tail(n)

    @property
    def status(self) -> Status:
        """``idle``, ``connecting``, ``live``, ``stale``, ``backoff``, ``storage_error``,
        ``stopped`` or ``failed``; ``.status.reason`` tells why for the last five.

        ``storage_error``: collection goes on but the database refuses writes (locked,
        full, gone); ticks wait in memory and the write is retried until it works or
        ``stop()``, which then ends ``failed`` with the number of ticks not written.
        """
        if self._storage_verdict is not None:
            return self._storage_verdict
        status = self._status
        if self._stop.is_set() and status not in ("stopped", "failed"):
            # asked to stop: never ``live`` again, whatever the threads set on their way out
            if not self.running:
                return Status("stopped")
            if status != "stopping":
                status = Status("stopping", _STILL_FINISHING)
        problem = self._storage_problem
        if problem and status not in ("stopped", "failed"):
            pipeline = self.pipeline
            dropped = (f", {pipeline.dropped_overflow:,} more dropped over pending_limit"
                       if pipeline.dropped_overflow else "")
            return Status("storage_error", f"{problem}; {pipeline.pending:,} ticks kept in "
                          f"memory{dropped}, retrying")
        return status

    @property
    def stats(self) -> dict:
        """Counters as a plain dict (same keys as ``rtkit replay --json`` and more)."""
        out = self.pipeline.stats()
        now = time.monotonic()
        fps = tps = 0.0
        if self._rates:
            t0, f0, k0 = self._rates[0]
            if now - t0 > 0.2:
                fps = (out["frames"] - f0) / (now - t0)
                tps = (out["ticks"] - k0) / (now - t0)
        last = self.pipeline.last_frame_ns
        status = self.status
        out.update(
            reconnects=self.reconnects,
            connections=self.connections,
            status=str(status),
            status_reason=status.reason,
            last_error=self.last_error,
            flush_failures=self.flush_failures,
            venue_error=self._redact(self.pipeline.last_venue_error),
            recording_error=self._recorder.failed if self._recorder else None,
            frames_per_s=round(fps, 1),
            ticks_per_s=round(tps, 1),
            last_message_age_s=round((time.time_ns() - last) / 1e9, 3) if last else None,
            ring_rows=len(self.ring),
        )
        return out

    def store(self) -> TickStore:
        """A read-only view of this collector's database (for the notebook thread)."""
        return self.store_type(self.db, readonly=True)

    def __repr__(self) -> str:
        p = self.pipeline
        return (f"<Collector {self.name} {self.status!r}: {p.ticks:,} ticks, {p.stored:,} stored, "
                f"{p.rejected:,} rejected → {self.db}>")

    # --- receive thread ----------------------------------------------------------------
    def _set_status(self, state: str, reason: str = "") -> None:
        self._status = Status(state, self._redact(reason))

    @property
    def last_error(self) -> str:
        """The newest problem, in words, without the URL's secrets."""
        return self._last_error

    @last_error.setter
    def last_error(self, text: str) -> None:
        self._last_error = self._redact(text)

    def _error(self, message: str) -> None:
        self.last_error = message
        log.warning("rtkit: %s: %s", self.name, self.last_error)

    def _abort_socket(self) -> None:
        ws = self._ws
        if ws is not None and ws.sock is not None:
            with contextlib.suppress(OSError):
                ws.sock.shutdown(socket.SHUT_RDWR)

    def _receive_loop(self) -> None:
        recorder = None
        try:
            if self.record_raw:
                recorder = self._recorder = RecordingWriter(self.record_raw)
            attempt = 0
            while not self._stop.is_set():
                got_ticks = self._session(recorder)
                if self._stop.is_set():
                    break
                attempt = 0 if got_ticks else attempt + 1
                if self._futile >= _MAX_FUTILE_CONNECTIONS:
                    self._set_status("failed", "venue keeps refusing the subscription: "
                                     f"{self.pipeline.last_venue_error}")
                    break
                self.reconnects += 1
                delay = min(self.backoff_max_s, self.backoff_initial_s * 2 ** min(attempt, 16))
                delay *= random.uniform(0.5, 1.0)
                self._set_status("backoff", f"retry in {delay:.1f}s after: {self.last_error}")
                self._stop.wait(delay)
        except Exception as exc:  # a bug: say so in .status instead of dying silently
            log.exception("rtkit: receive thread of %s failed", self.name)
            self._set_status("failed", f"{type(exc).__name__}: {exc}")
        finally:
            if recorder is not None:
                recorder.close()
            self._flush_now.set()

    def _session(self, recorder: RecordingWriter | None) -> bool:
        """One connection from connect to drop; returns whether it carried ticks."""
        pipeline = self.pipeline
        ticks_before = pipeline.ticks
        self._venue_errors = 0
        self._set_status("connecting", self.url)
        ws = websocket.WebSocket(skip_utf8_validation=True, sslopt=self.sslopt)
        self._ws = ws
        close_code = 1000  # normal closure
        try:
            open_websocket(ws, self.url, self.connect_timeout_s)
            if self._stop.is_set():
                return False
            self.connections += 1
            now = time.time_ns()
            pipeline.connection_opened(now)
            if recorder:
                recorder.event("open", now, self.venue, self.symbols)
            for message in self.adapter.subscribe_messages(self.symbols):
                ws.send(message)
            ws.sock.settimeout(_RECV_TIMEOUT_S)
            self._set_status("live")
            self._read_frames(ws, recorder)
        except (websocket.WebSocketException, OSError, ProtocolError) as exc:
            if isinstance(exc, ProtocolError):
                close_code = 1002  # RFC 6455: fail the connection, saying why
            if not self._stop.is_set():
                self._error(f"connection lost: {type(exc).__name__}: {quote(str(exc))}")
        finally:
            self._ws = None
            # our close frame, then the socket is cut without waiting for the server's:
            # websocket-client's close() would read on with its own parser, which waits
            # for a frame's whole payload however long the server streams it
            with contextlib.suppress(Exception):
                if not self._stop.is_set() and ws.connected:
                    ws.send_close(close_code)
            with contextlib.suppress(Exception):
                ws.shutdown()
            if recorder:
                recorder.event("close", time.time_ns(), self.venue)
        got_ticks = pipeline.ticks > ticks_before
        self._futile = 0 if got_ticks or not self._venue_errors else self._futile + 1
        return got_ticks

    def _read_frames(self, ws: websocket.WebSocket, recorder: RecordingWriter | None) -> None:
        """The hot loop: read the socket in large chunks, split frames, feed the pipeline.

        Returns when the venue closes, asks to reconnect, goes silent, or on stop;
        raises on a dropped connection.
        """
        pipeline, venue, adapter = self.pipeline, self.venue, self.adapter
        sock = ws.sock
        reader = FrameReader(pipeline.max_frame_bytes)
        feed, recv = reader.feed, sock.recv
        process, process_frames = pipeline.process, pipeline.process_frames
        ping_every_ns = int((adapter.ping_interval_s or 0) * 1e9)
        stale_ns = int(self.stale_after_s * 1e9)
        # timers run on the monotonic clock (a wall-clock step must not fake silence
        # or stop the pings); the wall clock only stamps received_at
        last_data = next_check = time.monotonic_ns()
        next_ping = last_data + ping_every_ns
        flush_mark = pipeline.queued + _FLUSH_BATCH
        while True:
            try:
                chunk = recv(_RECV_BYTES)
            except TimeoutError:
                chunk = None
            tick = time.monotonic_ns()
            if chunk:
                last_data = tick
                now = time.time_ns()
                messages = feed(chunk)
                texts = [p for op, p in messages if op == TEXT]
                if recorder:
                    for opcode, payload in messages:
                        if opcode in (TEXT, BINARY):
                            recorder.frame(now, venue, payload, opcode == BINARY)
                        elif opcode == TOO_LARGE:
                            recorder.too_large(now, venue, payload, payload.size)
                reconnect = False
                if texts:
                    for control in process_frames(texts, now):
                        reconnect = self._on_control(control) or reconnect
                pings = []  # answered after the loop: a pong that fails (the peer gone)
                # must not cost the frames after the ping in this read their count
                if len(texts) < len(messages):
                    for opcode, payload in messages:
                        if opcode == BINARY:
                            process(payload, now, True)
                        elif opcode == PING:
                            pings.append(payload)
                        elif opcode == CLOSE:
                            code = (int.from_bytes(payload[:2], "big") if len(payload) >= 2
                                    else None)
                            reason = payload[2:].decode("utf-8", "replace")
                            self._error(f"venue closed the connection (code {code} "
                                        f"{quote(reason)})")
                            reconnect = True
                        elif opcode == TOO_LARGE:
                            pipeline.reject_oversized(payload, payload.size, now)
                if pipeline.queued >= flush_mark:
                    flush_mark = pipeline.queued + _FLUSH_BATCH
                    self._flush_now.set()
                for payload in pings:
                    ws.pong(payload)
                if reader.error is not None:  # the frames before it were counted above
                    raise reader.error
                if reconnect:  # only now: every frame of the chunk was counted first
                    return
            elif chunk is not None:  # b"": the peer closed the TCP connection
                raise websocket.WebSocketConnectionClosedException("connection closed by peer")
            if tick >= next_check:
                next_check = tick + 250_000_000
                if self._stop.is_set():
                    return
                if tick - last_data > stale_ns:
                    self._set_status("stale", f"no data for {self.stale_after_s:g}s")
                    self._error(f"no data for {self.stale_after_s:g}s; reconnecting")
                    return
                if self._status != "live":
                    self._set_status("live")
                if ping_every_ns and tick >= next_ping:
                    next_ping = tick + ping_every_ns
                    message = adapter.ping_message()
                    if message:
                        ws.send(message)

    def _on_control(self, control) -> bool:
        """React to a venue's control message; True means reconnect now."""
        if control.kind == "error":
            self._venue_errors += 1
            self._error(f"venue error: {quote(control.detail)}")
        elif control.kind == "reconnect":
            self.last_error = f"venue asked to reconnect: {quote(control.detail)}"
            return True
        return False

    # --- writer thread -----------------------------------------------------------------------
    def _write_loop(self) -> None:
        """Flush every interval; while the database refuses, keep everything in memory,
        say so in ``.status`` and retry with a growing pause."""
        store = None
        retry_s = _RETRY_FIRST_S
        try:
            store = self._open_store()
            while True:
                receiving = self._recv_thread is not None and self._recv_thread.is_alive()
                self._flush_now.wait(self.flush_interval_s if receiving else 0.05)
                self._flush_now.clear()
                self._rates.append((time.monotonic(), self.pipeline.frames, self.pipeline.ticks))
                if store is not None and _file_identity(self.db) != self._db_identity:
                    store.close()  # its file is gone: writes would land in an unlinked inode
                    store = None
                    self._storage_failed(
                        f"the database file '{self.db}' was moved, replaced or deleted while "
                        "collecting; it is made again, and what was written before is "
                        "wherever the old file went (nowhere, if it was deleted)")
                if store is None:
                    store = self._open_store()
                ok = store is not None and self._flush(store)
                if not receiving and (ok or self._stop.is_set()):
                    break
                if ok:
                    retry_s = _RETRY_FIRST_S
                else:
                    self._stop.wait(retry_s)
                    retry_s = min(retry_s * 2, _RETRY_MAX_S)
        except Exception as exc:  # a bug: say so in .status instead of dying silently
            log.exception("rtkit: writer thread of %s failed", self.name)
            self._storage_verdict = Status("failed", f"storage: {type(exc).__name__}: {exc}")
        finally:
            self._finish_storage(store)

    def _open_store(self) -> TickStore | None:
        """The writing store with this run's row in it; None while the database refuses."""
        store = None
        try:
            store = self.store_type(self.db, busy_timeout_s=_BUSY_TIMEOUT_S)
            self._db_identity = _file_identity(self.db)
            self._run_id = store.start_run(
                name=self.name, venue=self.venue, symbols=self.symbols, url=self.redacted_url,
                config={"flush_interval_s": self.flush_interval_s,
                        "capacity": self.ring.capacity, "record_raw": self.record_raw,
                        "pending_limit": self.pipeline.pending_limit},
                started_at=self.started_at_ns or time.time_ns())
        except (StoreError, sqlite3.Error, OSError) as exc:
            if store is not None:
                store.close()
            self._storage_failed(exc)
            return None
        return store

    def _flush(self, store: TickStore) -> bool:
        """Write what is pending; False (and everything kept) when the database refuses."""
        pipeline = self.pipeline
        batch = pipeline.take()
        if any(batch):
            refused: list[tuple] = []
            try:
                inserted = store.write(*batch, refused=refused)
            except Exception as exc:  # busy, locked, disk full, read-only: keep it all, retry
                pipeline.give_back()
                self._storage_failed(exc)
                return False
            if refused:  # rows SQLite cannot store: counted, never retried
                batch = pipeline.set_aside(batch, refused)
                self._storage_refused_rows(refused)
            pipeline.done(batch, inserted)
        self._storage_recovered()
        return True

    def _storage_refused_rows(self, refused: list[tuple]) -> None:
        """Say once per table that SQLite refused rows of it; the counts are in ``.stats``."""
        for table, _, error in refused:
            if table not in self._refused_tables:
                self._refused_tables.add(table)
                key = "unstorable" if table == "ticks" else f"{table}_unstorable"
                log.warning("rtkit: %s: SQLite refused a row of '%s' (%s); such rows are set "
                            "aside and counted in stats[%r], the rest is written", self.name,
                            table, quote(error), key)

    def _storage_recovered(self) -> None:
        if self._storage_problem:
            log.warning("rtkit: %s: storage works again after %s", self.name,
                        self._storage_problem)
            self._storage_problem = ""

    def _storage_failed(self, problem: Exception | str) -> None:
        """A write was refused: ``.status`` is ``storage_error`` until one works again."""
        text = problem if isinstance(problem, str) else f"{type(problem).__name__}: {problem}"
        if text != self._storage_problem:
            log.warning("rtkit: %s: storage: %s; ticks are kept in memory and the write retried",
                        self.name, text)
        self._storage_problem = text
        self.flush_failures += 1
        self.last_error = f"storage: {text}"

    def _finish_storage(self, store: TickStore | None) -> None:
        """Close the run; stopping with ticks the database never took is a failure, with
        their number in the reason."""
        self.stopped_at_ns = time.time_ns()
        unwritten = self.pipeline.pending
        if unwritten and self._storage_verdict is None:
            self._storage_verdict = Status(
                "failed", f"stopped with {unwritten:,} ticks not written to '{self.db}': "
                f"{self._storage_problem}")
        if store is not None:
            with contextlib.suppress(Exception):
                status = "failed" if self.status == "failed" else "stopped"
                store.finish_run(self._run_id, stopped_at=self.stopped_at_ns, status=status,
                                 counters=self.stats)
            store.close()

    # --- notebook ----------------------------------------------------------------------------
    def panel(self, **options):
        """An ipywidgets control panel for this collector: an ``rtkit.widgets.Panel``
        (Start / Stop, status, live counters, newest ticks, a price chart per symbol).

        ``options``: ``rows``, ``chart_ticks``, ``refresh_s``. Closing the panel
        leaves the collector running.
        """
        from rtkit.widgets import Panel  # ipywidgets and bqplot load only when asked for

        return Panel(self, **options)


def _file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path`` now; None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def collect(venue: str, symbols: list[str] | str, **kwargs) -> Collector:
    """Create a :class:`Collector` and start it; returns at once with the collector."""
    return Collector(venue, symbols, **kwargs).start()
