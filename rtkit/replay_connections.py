"""The connections of a :class:`rtkit.replay.Replay`: each frame fed as from the
connection it came on.

With two connections on the same streams (``redundancy=2``, a handover's overlap) a
live pipeline takes each book and each symbol's quotes from one connection, and moves
them to the other when theirs ends (``Pipeline.feeding_connection``,
``Pipeline.connection_closed``). A recording says which connection each frame came on
and when each opened and closed (``conn``, see :mod:`rtkit.recording`), so a replay
tells its pipelines alike and rebuilds the same books and quotes. A recording without
``conn`` replays as one stream, as it always did.
"""

from __future__ import annotations

from typing import Any

from rtkit.pipeline import Pipeline
from rtkit.recording import BAD_LINE, Event, Frame

#: connections of a venue a replay follows at once: a live receiver has at most three
#: open (``redundancy=2`` and a handover's successor); a recording that opens more
#: without closing them is forged, and the oldest is taken as closed
MAX_OPEN_CONNECTIONS = 8


class ConnectionReplay:
    """The recorded connections of a replay's venues (a mixin of ``Replay``)."""

    # set by the Replay this is part of
    pipeline: Any
    _bad_line: Any

    def _init_connections(self) -> None:
        #: venue → the numbers of its recorded connections open, oldest first
        self._open_connections: dict[str, list[int]] = {}

    def _connection_opened(self, event: Event, pipeline: Pipeline) -> None:
        """An ``open`` event: its connection is followed (an adapter that numbers each
        connection's frames, Coinbase's, is told, as the live receiver tells it)."""
        number = event.connection
        if not number:  # a recording from before connections were numbered
            return
        numbers = self._open_connections.setdefault(event.venue, [])
        if numbers and number <= numbers[-1]:  # counted from 1 again: a later run of the
            numbers.clear()  # file (the one before was killed, its closes never written)
        if len(numbers) >= MAX_OPEN_CONNECTIONS:
            oldest = numbers.pop(0)
            self._bad_line(BAD_LINE, f"an 'open' event of connection {number} while "
                           f"{MAX_OPEN_CONNECTIONS} were open; connection {oldest} is taken "
                           "as closed", b"", 0, event.received_at, event.venue)
            pipeline.connection_closed(oldest, event.received_at, False)
        numbers.append(number)
        if (reading := getattr(pipeline.adapter, "reading_connection", None)) is not None:
            reading(number)

    def _connection_closed(self, event: Event) -> None:
        """A ``close`` event: the books and quotes its connection fed move to the other
        one, as the live run moved them (not when the collector was stopping)."""
        numbers = self._open_connections.get(event.venue)
        if not event.connection or not numbers or event.connection not in numbers:
            return
        numbers.remove(event.connection)
        if not event.stopping:
            self.pipeline(event.venue).connection_closed(event.connection, event.received_at,
                                                         event.handover)

    def _feeding(self, frame: Frame) -> int | None:
        """The connection a text frame came on (None: not recorded); -1 for a frame of a
        connection that is not open (a forged line: a counted reject, not fed)."""
        numbers = self._open_connections.get(frame.venue)
        if not numbers:
            return None
        if not frame.connection:  # written while one connection was open: that one
            return numbers[0] if len(numbers) == 1 else None
        if frame.connection in numbers:
            return frame.connection
        self._bad_line(BAD_LINE, f"a frame of connection {frame.connection}, which is not "
                       "open (no 'open' event names it)", _head(frame.frame),
                       len(frame.frame), frame.received_at, frame.venue)
        return -1

    def _process_frame(self, frame: Frame, pipeline: Pipeline) -> None:
        """A text frame through its pipeline, as read from its connection."""
        feeding = self._feeding(frame)
        if feeding == -1:
            return
        if feeding is None:
            pipeline.process(frame.frame, frame.received_at)
            return
        if (reading := getattr(pipeline.adapter, "reading_connection", None)) is not None:
            reading(feeding)
        pipeline.feeding_connection = feeding
        try:
            pipeline.process(frame.frame, frame.received_at)
        finally:
            pipeline.feeding_connection = None


def _head(frame: bytes | str) -> bytes:
    """A frame's first bytes, for its reject row."""
    return (frame if isinstance(frame, bytes) else frame.encode())[:4096]
