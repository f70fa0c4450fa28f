"""Several sinks behind one: SQLite first (its key decides what is new), then the others.

The writer hands every flush to :class:`Fanout`, which keeps the sink contract.
SQLite is written first: its insert count is what the pipeline counts as
stored (the rest of the batch as duplicates), and the rows it refuses one by
one are set aside for every sink. The other sinks (the Parquet lake) get the
rows SQLite did not refuse.

A refusal after SQLite took the batch (the lake's disk is full) fails the
flush like any refusal: the batch goes back to the pipeline and is retried.
So that SQLite does not see those rows twice (and count them as duplicates),
Fanout remembers how much of the batch's front SQLite already has, with what
it said of it, and writes only the rest to SQLite on the retry (``give_back``
puts a failed batch back in front of the newer rows, in the same order).
"""

from __future__ import annotations

from rtkit.sinks import RunEnd, RunInfo


class Fanout:
    """``primary`` (SQLite) and ``others``, as one sink."""

    def __init__(self, primary, *others) -> None:
        self.primary, self.others = primary, others
        self.sinks = (primary, *others)
        self.where = " and ".join(s.where for s in self.sinks)
        #: (ticks, rejects, gaps rows, inserted, refused positions) the primary already has
        self._primary_has: tuple | None = None

    @property
    def is_open(self) -> bool:
        return all(s.is_open for s in self.sinks)

    def open(self, run: RunInfo) -> None:
        for sink in self.sinks:
            if not sink.is_open:
                sink.open(run)

    def check(self) -> str | None:
        problems = [p for p in (s.check() for s in self.sinks) if p]
        return "; ".join(problems) or None

    def write(self, batch, refused: list):
        has = self._primary_has
        if has is None:
            positions: list[tuple[str, int, str]] = []
            inserted = self._write_primary(batch, (0, 0, 0), positions)
        else:
            n_ticks, n_rejects, n_gaps, inserted, positions = has
            positions = list(positions)
            inserted += self._write_primary(batch, (n_ticks, n_rejects, n_gaps), positions)
        self._primary_has = (len(batch.ticks), len(batch.rejects), len(batch.gaps), inserted,
                             positions)
        gone = {i for table, i, _ in positions if table == "ticks"}
        rows = [row for i, row in enumerate(batch.ticks) if i not in gone]
        for sink in self.others:
            sink.write(rows)
        self._primary_has = None
        fields = type(batch)._fields
        for table, i, error in positions:
            refused.append((table, batch[fields.index(table)][i], error))
        return inserted

    def _write_primary(self, batch, skip: tuple[int, int, int], positions: list) -> int:
        """Write the batch past ``skip`` rows of each table; note refused rows' positions."""
        rest = type(batch)(*(rows[n:] for rows, n in zip(batch, skip, strict=True)))
        if not any(rest):
            return 0
        refused: list[tuple] = []
        inserted = self.primary.write(rest, refused)
        fields = type(batch)._fields
        for table, row, error in refused:
            index = fields.index(table)
            part = rest[index]
            at = next(i for i, r in enumerate(part) if r is row)
            positions.append((table, skip[index] + at, error))
        return inserted

    def close(self, end: RunEnd | None = None) -> None:
        for sink in self.sinks:
            sink.close(end)
