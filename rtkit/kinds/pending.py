"""Rows of the kinds other than trades, from the pipeline to the sinks, with their counts.

An adapter that emits more than trades returns a frame's rows as
:class:`rtkit.kinds.Rows` (``{kind: rows}``): trades as the ring's tuples,
every other kind as tuples in its columns' order, ready to store. The
pipeline keeps the trades itself and hands the rest here: rows of a kind the
collector collects wait for the writer, rows of any other kind are counted
(``rows_not_collected``) and dropped. Per kind, in ``stats`` under the names
its description gives (``Kind.counters``)::

    received == stored + duplicates + pending + <kind>_dropped_overflow + <kind>_unstorable

Threading as the pipeline's: ``add`` on the receiving thread (under the
pipeline's ``_counting``), ``take``/``done``/``give_back`` on the writer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rtkit.kinds import Kind, get_kind


@dataclass
class KindCount:
    """One kind's counters (``pending`` is what is neither stored nor lost)."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    unstorable: int = 0
    dropped_overflow: int = 0


class PendingRecords:
    """The pending rows of each collected kind but trades, and their counters."""

    def __init__(self, kinds: Iterable[str], pending_limit: int) -> None:
        self.kinds: dict[str, Kind] = {n: get_kind(n) for n in kinds if n != "trades"}
        self.counts = {name: KindCount() for name in self.kinds}
        self.pending_limit = pending_limit
        self.not_collected = 0
        self._lock = threading.Lock()
        self._pending: dict[str, list] = {}
        self._taken: dict[str, list] = {}

    def add(self, rows: Mapping[str, list]) -> int:
        """Take a frame's rows of the other kinds; returns how many there were."""
        seen = 0
        for name, items in rows.items():
            if name == "trades" or not items:
                continue
            seen += len(items)
            count = self.counts.get(name)
            if count is None:
                self.not_collected += len(items)
                continue
            count.received += len(items)
            if self._pending_of(count) + len(items) > self.pending_limit:
                count.dropped_overflow += len(items)
                continue
            with self._lock:
                self._pending.setdefault(name, []).extend(items)
        return seen

    def most_pending(self) -> int:
        """The most rows of one kind waiting for the writer (its ``pending_limit`` is per kind)."""
        return max((self._pending_of(c) for c in self.counts.values()), default=0)

    @staticmethod
    def _pending_of(c: KindCount) -> int:
        return c.received - c.stored - c.duplicates - c.unstorable - c.dropped_overflow

    def take(self) -> dict[str, list]:
        with self._lock:
            taken, self._pending = self._pending, {}
        self._taken = taken
        return taken

    def give_back(self) -> None:
        with self._lock:
            for name, rows in self._taken.items():
                self._pending[name] = rows + self._pending.get(name, [])
        self._taken = {}

    def set_aside(self, records: Mapping[str, list], refused: list[tuple]) -> dict[str, list]:
        """``records`` without the rows a sink refused (``(table, row, error)``), counted."""
        kept = {}
        for name, rows in records.items():
            table = self.kinds[name].table
            gone = {id(row) for t, row, _ in refused if t == table}
            kept[name] = [row for row in rows if id(row) not in gone]
            self.counts[name].unstorable += len(rows) - len(kept[name])
        return kept

    def done(self, records: Mapping[str, list], inserted: Mapping[str, int]) -> None:
        for name, rows in records.items():
            count = self.counts[name]
            new = inserted.get(name, 0)
            count.stored += new
            count.duplicates += len(rows) - new
        self._taken = {}

    def stats(self) -> dict[str, int]:
        out = {"rows_not_collected": self.not_collected}
        for name, c in self.counts.items():
            received, stored, duplicates, pending = self.kinds[name].counters or (
                name, f"{name}_stored", f"{name}_duplicates", f"{name}_pending")
            out.update({received: c.received, stored: c.stored, duplicates: c.duplicates,
                        pending: self._pending_of(c),
                        f"{name}_dropped_overflow": c.dropped_overflow,
                        f"{name}_unstorable": c.unstorable})
        return out
