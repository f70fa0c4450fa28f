"""What the simulator can be told to get wrong (:class:`Faults`), and the fault state
one connection carries (:class:`Link`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from rtkit.sim.hostile import HostileFrame


def _fault(default, help: str, kind: type | None = int):
    """A Faults field; ``kind`` is its command-line type (None: not on the command line)."""
    return field(default=default, metadata={"help": help, "kind": kind})


@dataclass
class Faults:
    """Misbehaviour to inject; every field off by default.

    Counts of trade frames are per connection for ``drop_every``,
    ``close_every`` and ``stall_every`` (each connection carries that many),
    and over the whole run for the others. Frames re-sent on a (re)subscribe
    (the ``overlap``) are sent clean. ``rtkit sim`` has a flag per field.
    """

    drop_every: int | None = _fault(
        None, "abort the TCP connection (no close frame) after this many trade frames")
    close_every: int | None = _fault(
        None, "send a close frame with close_code after this many trade frames")
    close_code: int = _fault(1001, "the code of those close frames")
    stall_every: int | None = _fault(
        None, "after this many trade frames, send nothing more but keep the socket open")
    refuse_for_s: float = _fault(
        0.0, "answer every connection attempt with HTTP 503 for this many seconds", float)
    reject_symbols: tuple[str, ...] = _fault(
        (), "answer subscriptions to these BASE-QUOTE symbols with the venue's error", tuple)
    ignore_pings: bool = _fault(
        False, "leave unanswered every client message that subscribes nothing new "
        "(pings, keep-alives)", bool)
    skip_id_every: int | None = _fault(
        None, "every Nth trade takes one id more than it should: a gap of one")
    duplicate_every: int | None = _fault(None, "send every Nth trade frame twice")
    reorder_every: int | None = _fault(
        None, "send every Nth trade frame after the one that follows it")
    bad_frame_every: int | None = _fault(
        None, "after every Nth trade frame, send the next hostile frame (rtkit.sim.hostile)")
    bad_frames: tuple[HostileFrame, ...] | None = _fault(
        None, "the hostile frames to cycle through (default: the venue's list)", None)
    throttle_frames_per_s: float | None = _fault(
        None, "send at most this many trade frames per second, whatever the rate", float)
    # --- order books: counted over the book deltas of the whole run (any venue's dialect)
    book_drop_every: int | None = _fault(
        None, "leave out every Nth book delta (the book moved on without it)")
    book_duplicate_every: int | None = _fault(None, "send every Nth book delta twice")
    book_reorder_every: int | None = _fault(
        None, "send every Nth book delta after the one that follows it")
    book_reset_every: int | None = _fault(
        None, "after every Nth book delta the venue restarts: its sequence starts again")
    book_corrupt_every: int | None = _fault(
        None, "every Nth book delta carries one level with a wrong size (the book keeps "
        "the right one: a checksum sees it)")
    book_cross_every: int | None = _fault(
        None, "every Nth book delta sets a bid above the best ask (a crossed book)")
    book_close_every: int | None = _fault(
        None, "close the connection (code close_code) after every Nth book delta")
    stale_snapshot_every: int | None = _fault(
        None, "every Nth REST depth snapshot is an old one, older than the stream")
    lifetime_s: float | None = _fault(
        None, "close each connection (code 1001) this many seconds after it opened, as "
        "Binance does after 24 h", float)
    notice_s: float = _fault(
        0.0, "announce each lifetime close this many seconds before it with the venue's "
        "notice (OKX event 64008, Bitstamp bts:request_reconnect)", float)
    lose_every: int | None = _fault(
        None, "leave out every Nth trade frame of a connection (lost; the connection stays up)")
    faulty_connections: tuple[int, ...] = _fault(
        (), "apply drop/close/stall/lose only to these connections (1: the first accepted)",
        None)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata["kind"] in (int, float) and value is not None and not value >= 0:
                raise ValueError(f"Faults.{f.name} must be a number >= 0 (or None), not {value!r}")
            if f.name.endswith("_every") and value == 0:
                raise ValueError(f"Faults.{f.name} counts frames: give N >= 1, or None for off")
        self.reject_symbols = tuple(self.reject_symbols)
        self.faulty_connections = tuple(self.faulty_connections)
        if self.lifetime_s is not None and not self.notice_s < self.lifetime_s:
            raise ValueError(f"Faults.notice_s ({self.notice_s!r}) must be shorter than "
                             f"lifetime_s ({self.lifetime_s!r})")

    def hits(self, connection: int) -> bool:
        """Whether the per-connection faults act on the ``connection``-th one (from 1)."""
        return not self.faulty_connections or connection in self.faulty_connections

    @property
    def per_frame(self) -> bool:
        """Whether sending must go frame by frame (no pre-encoded fast path)."""
        return any((self.drop_every, self.close_every, self.stall_every, self.duplicate_every,
                    self.reorder_every, self.bad_frame_every, self.throttle_frames_per_s,
                    self.lose_every))

    @property
    def book_per_frame(self) -> bool:
        """Whether book frames must go out one by one (a book fault acts between them)."""
        return any((self.book_drop_every, self.book_duplicate_every, self.book_reorder_every,
                    self.book_reset_every, self.book_corrupt_every, self.book_cross_every,
                    self.book_close_every))


@dataclass
class Link:
    """One connection's fault state."""

    trade_frames: int = 0
    faulty: bool = True  # the per-connection faults act on it (Faults.faulty_connections)
    noticed: bool = False  # the close at the end of its lifetime was announced
    close_at: float = 0.0  # not closed before (monotonic s): the notice period holds
    held: str | None = None  # a frame held back by reorder_every
    next_send: float = 0.0  # throttle clock (monotonic s)
    held_book: str | None = None  # a book frame held back by book_reorder_every
