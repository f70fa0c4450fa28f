"""Several sinks behind one: SQLite first (its key decides what is new), then the others.

The writer hands every flush to :class:`Fanout`, which keeps the sink contract.
SQLite is written first: its insert count is what the pipeline counts as
stored (the rest of the batch as duplicates), and the rows it refuses one by
one are set aside for every sink. The other sinks (the Parquet lake) get the
rows SQLite did not refuse: the trades, and the rows of the other kinds.

A refusal after SQLite took the batch (the lake's disk is full) fails the
flush like any refusal: the batch goes back to the pipeline and is retried.
So that SQLite does not see those rows twice (and count them as duplicates),
Fanout remembers how much of the batch's front SQLite already has, with what
it said of it, and writes only the rest to SQLite on the retry (``give_back``
puts a failed batch back in front of the newer rows, in the same order).
"""

from __future__ import annotations

from collections.abc import Sequence

from rtkit.kinds import get_kind
from rtkit.pipeline import Batch
from rtkit.sinks import RunEnd, RunInfo
from rtkit.store import Inserted

#: where a refused row was: (table or kind, position in its list, the error)
Position = tuple[str, int, str]


def _lengths(batch: Batch) -> tuple[int, int, int, dict[str, int]]:
    records = batch.records or {}
    return (len(batch.ticks), len(batch.rejects), len(batch.gaps),
            {name: len(rows) for name, rows in records.items()})


class Fanout:
    """``primary`` (SQLite) and ``others``, as one sink."""

    def __init__(self, primary, *others) -> None:
        self.primary, self.others = primary, others
        self.sinks = (primary, *others)
        self.where = " and ".join(s.where for s in self.sinks)
        #: what the primary already has of the batch being retried: the lengths it
        #: took, what it inserted, and where the rows it refused were
        self._primary_has: tuple | None = None

    @property
    def is_open(self) -> bool:
        return all(s.is_open for s in self.sinks)

    # writer="auto" and "process": the writer thread asks the SQLite sink, through this,
    # whether its writer process is to be started or is starting. Not ``in_child``: the
    # writer would send flushes back to back while the child keeps busy, and each writes
    # a Parquet file per partition here, dozens a second of a few thousand rows each
    @property
    def undecided(self) -> bool:
        return getattr(self.primary, "undecided", False)

    @property
    def starting(self) -> bool:
        return getattr(self.primary, "starting", False)

    def start_child(self) -> None:
        self.primary.start_child()

    def open(self, run: RunInfo) -> None:
        for sink in self.sinks:
            if not sink.is_open:
                sink.open(run)

    def check(self) -> str | None:
        problems = [p for p in (s.check() for s in self.sinks) if p]
        return "; ".join(problems) or None

    def write(self, batch: Batch, refused: list):
        has = self._primary_has
        if has is None:
            skip: tuple[int, int, int, dict[str, int]] = (0, 0, 0, {})
            ticks, kinds, positions = 0, {}, []
        else:
            skip, ticks, kinds, positions = has[0], has[1], dict(has[2]), list(has[3])
        new = self._write_primary(batch, skip, positions)
        ticks += int(new)
        for name, n in new.kinds.items():
            kinds[name] = kinds.get(name, 0) + n
        self._primary_has = (_lengths(batch), ticks, kinds, positions)
        kept = self._kept(batch, positions)
        for sink in self.others:
            sink.write(kept)
        self._primary_has = None
        for where, i, error in positions:
            refused.append((where, self._rows_of(batch, where)[i], error))
        return Inserted(ticks, kinds)

    @staticmethod
    def _rows_of(batch: Batch, where: str) -> list:
        if where in ("ticks", "rejects", "gaps"):
            return getattr(batch, where)
        return next(rows for name, rows in (batch.records or {}).items()
                    if _table(name) == where)

    @staticmethod
    def _kept(batch: Batch, positions: list[Position]) -> Batch:
        """The batch's trades and records without the rows the primary refused."""
        def without(rows: Sequence, where: str) -> list:
            gone = {i for w, i, _ in positions if w == where}
            return [row for i, row in enumerate(rows) if i not in gone] if gone else list(rows)
        records = {name: without(rows, _table(name))
                   for name, rows in (batch.records or {}).items()}
        return Batch(without(batch.ticks, "ticks"), [], [], records or None)

    def _write_primary(self, batch: Batch, skip: tuple, positions: list[Position]) -> Inserted:
        """Write the batch past ``skip`` rows of each list; note refused rows' positions."""
        n_ticks, n_rejects, n_gaps, n_kinds = skip
        records = {name: rows[n_kinds.get(name, 0):]
                   for name, rows in (batch.records or {}).items()}
        rest = Batch(_past(batch.ticks, n_ticks), batch.rejects[n_rejects:],
                     batch.gaps[n_gaps:],
                     {name: rows for name, rows in records.items() if rows} or None)
        if not (rest.ticks or rest.rejects or rest.gaps or rest.records):
            return Inserted(0)
        refused: list[tuple] = []
        inserted = self.primary.write(rest, refused)
        offsets = {"ticks": n_ticks, "rejects": n_rejects, "gaps": n_gaps}
        for name in records:
            offsets[_table(name)] = n_kinds.get(name, 0)
        for where, row, error in refused:
            part = self._rows_of(rest, where)
            at = next(i for i, r in enumerate(part) if r is row)
            positions.append((where, offsets[where] + at, error))
        return inserted if isinstance(inserted, Inserted) else Inserted(inserted)

    def close(self, end: RunEnd | None = None) -> None:
        for sink in self.sinks:
            sink.close(end)


def _table(kind_name: str) -> str:
    return get_kind(kind_name).table


def _past(rows: Sequence, n: int) -> Sequence:
    """``rows`` past their first ``n``; the rows themselves when ``n`` is 0: a flush's
    trades stay the ring's ticks (``TradeRows``), which the writer process is sent in
    place of rows (issue 17), where a slice would make them rows in this process."""
    return rows[n:] if n else rows
