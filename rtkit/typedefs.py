"""The closed sets of words rtkit uses, and the shape of its stats dicts, in one place.

A status, a control kind or a reject reason is a plain ``str`` at run time (they
are stored in SQLite and shown to users); these declarations let a type checker
(``make lint`` runs mypy) catch a misspelt one, and give the tuples the code
iterates over (``validate.REASONS``) from the same source.
"""

from __future__ import annotations

from typing import Literal, TypedDict, get_args

#: A collector's ``.status`` (``Status`` is a ``str`` subclass with a ``.reason``).
StatusState = Literal[
    "idle",  # built, not started
    "connecting",  # opening the socket and subscribing
    "live",  # receiving
    "stale",  # connected, but nothing received for stale_after_s
    "backoff",  # between connections, waiting to retry
    "storage_error",  # the last SQLite write was refused; retrying
    "stopping",  # stop() was asked for and the threads have not ended yet
    "stopped",  # ended on request; everything flushed
    "failed",  # ended on its own: a venue that keeps refusing, or a bug
]
STATES: tuple[StatusState, ...] = get_args(StatusState)

#: ``Control.kind``: what a frame that is not a trade is.
ControlKind = Literal[
    "ack",  # a subscription or request confirmed
    "error",  # the venue reports an error: it reaches ``last_error`` and the status
    "heartbeat",  # the venue's keep-alive
    "pong",  # the answer to our ping
    "info",  # anything else worth counting but not acting on
    "reconnect",  # the venue asks us to reconnect
]
CONTROL_KINDS: tuple[ControlKind, ...] = get_args(ControlKind)

#: Why a frame or a trade was rejected (the ``rejects`` table's ``reason``).
RejectReason = Literal[
    "malformed_json",  # not JSON, or not UTF-8
    "binary_frame",  # a binary WebSocket frame where the venue sends text
    "frame_too_large",  # over the collector's max_frame_bytes
    "missing_field",  # a field a trade must have is absent
    "bad_number",  # a price/size/id that is not a plain ASCII number (or is NaN), or a
    #                text id that is not printable ASCII
    "non_positive",  # a price/size of zero or below
    "out_of_range",  # a price/size that is infinite or absurdly large; an id too long
    "bad_timestamp",  # a time that cannot be read, is no real date or is outside 2000..2100
    "bad_side",  # a side value the venue does not define
    "unknown_symbol",  # a symbol that cannot be normalised, or is over MAX_SYMBOL_CHARS
    "unsubscribed_symbol",  # a trade of a symbol the collector did not subscribe
    "too_many_symbols",  # a new symbol beyond MAX_SYMBOLS, on a feed without a symbol list
    "unknown_message",  # well-formed JSON of a kind the venue adapter does not know
    "anomaly",  # a price far from the recent median (only with an AnomalyFilter)
    "adapter_error",  # the venue adapter itself failed: a bug, logged with its traceback
]
REASONS: tuple[RejectReason, ...] = get_args(RejectReason)


class PipelineStats(TypedDict):
    """One pipeline's counters (``Pipeline.stats()``); the accounting identities are
    ``frames == tick_frames + control + rejected_frames`` and
    ``ticks == stored + duplicates + pending + dropped_overflow + unstorable``."""

    frames: int
    tick_frames: int
    ticks: int
    stored: int
    duplicates: int
    pending: int
    dropped_overflow: int
    unstorable: int
    rejected: int
    rejected_frames: int
    rejected_by_reason: dict[RejectReason, int]
    rejects_pending: int
    rejects_dropped: int
    rejects_unstorable: int
    gaps_unstorable: int
    control: int
    gaps: int
    missing_trades: int
    late_trades: int
    id_resets: int
    gap_windows_forgotten: int
    reconnect_marks: int
    gaps_open: int  # gap rows still ``pending`` (a backfill may fill them)
    backfilled: int  # trades a backfill filled


class BackfillStats(TypedDict, total=False):
    """Only where a backfill runs (:mod:`rtkit.backfill`): gaps waiting for a retry after
    their venue failed, when the next is due, retries so far, the backfill's last problem."""

    backfill_retry_waiting: int
    backfill_next_retry_s: float | None
    backfill_retries: int
    backfill_problem: str


class CollectorStats(PipelineStats, BackfillStats):
    """``Collector.stats``: the pipeline's counters and the connection's state."""

    reconnects: int
    connections: int
    handovers: int  # connections handed over without a hole (make-before-break)
    status: StatusState
    status_reason: str
    last_error: str
    flush_failures: int
    #: where SQLite is written now: "thread", "starting" (a writer process is; the thread
    #: writes meanwhile) or "process" (writer="auto" once rows came fast, or "process")
    sqlite_writer: str
    venue_error: str
    refused_symbols: list[str]  # symbols the venue refused, named in its error
    recording_error: str | None  # why the raw recording stopped, if it did
    frames_per_s: float
    ticks_per_s: float
    last_message_age_s: float | None  # None before the first frame
    ring_rows: int
    completeness: float | None  # trades kept / trades the ids say existed (None: cannot say)


class ChainStats(CollectorStats):
    """``ChainCollector.stats``: a collector's, and the blocks and reorgs of the chain."""

    blocks: int
    blocks_stored: int
    block_duplicates: int
    blocks_pending: int
    reorgs: int
    removed: int
    replaced: int
    deleted: int


class ReplaySummary(PipelineStats):
    """What ``rtkit.replay`` returns (and ``rtkit replay --json`` prints): every
    venue's counters summed, and the file's own."""

    bad_lines: int
    venues: list[str]
    connections: int
    db: str
    #: ``gap_finished`` events that named no gap of the replay (``rtkit.replay_gaps``)
    gaps_unmatched: int
    completeness: float | None  # as ``CollectorStats``: over the venues whose ids can say
