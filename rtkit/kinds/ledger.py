"""The ledger tables beside the records: what could not become a record, where
records are missing, and the collection runs. Rows get a rowid ``id``; none of
them is a kind of record (no ring, no dedup), but their schema is described
the same way."""

from __future__ import annotations

from rtkit.kinds import Column, Kind

REJECTS = Kind(
    name="rejects",
    table="rejects",
    columns=(
        Column("id", "INTEGER", "int64"),
        Column("received_at", "INTEGER", "int64"),
        Column("venue", "TEXT", "object"),
        Column("reason", "TEXT", "object"),
        Column("detail", "TEXT", "object"),
        Column("frame", "TEXT", "object"),
        Column("frame_bytes", "INTEGER", "int64"),
    ),
    key=("id",),
    doc="a frame or record that could not become a record, with its reason",
)
GAPS = Kind(
    name="gaps",
    table="gaps",
    columns=(
        Column("id", "INTEGER", "int64"),
        Column("venue", "TEXT", "object"),
        Column("symbol", "TEXT", "object"),
        Column("first_missing", "TEXT", "object"),
        Column("last_missing", "TEXT", "object"),
        Column("missing", "INTEGER", "Int64"),
        Column("seen_at", "INTEGER", "int64"),
        Column("kind", "TEXT", "object"),
        # the ledger (rtkit.gaps.GapLedger): pending/filled/partial/unfillable, why,
        # when and how many trades were filled, and a backfiller's claim
        Column("status", "TEXT", "object"),
        Column("why", "TEXT", "object"),
        Column("filled_at", "INTEGER", "Int64"),
        Column("filled", "INTEGER", "Int64"),
        Column("claimed_at", "INTEGER", "Int64"),
    ),
    key=("id",),
    doc="a range of missing records, a reconnect or an id reset, and what became of it",
)
RUNS = Kind(
    name="runs",
    table="runs",
    columns=(
        Column("id", "INTEGER", "int64"),
        Column("name", "TEXT", "object"),
        Column("venue", "TEXT", "object"),
        Column("symbols", "TEXT", "object"),
        Column("url", "TEXT", "object"),
        Column("config", "TEXT", "object"),
        Column("started_at", "INTEGER", "int64"),
        Column("stopped_at", "INTEGER", "Int64"),
        Column("status", "TEXT", "object"),
        Column("counters", "TEXT", "object"),
    ),
    key=("id",),
    doc="one collection run",
)

#: in the order a store creates them
TABLES = (REJECTS, GAPS, RUNS)


def insert_sql(table: Kind) -> str:
    """An ``INSERT`` of every column but the rowid ``id``."""
    names = [n for n in table.names if n != "id"]
    return (f"INSERT INTO {table.table} ({', '.join(names)}) "
            f"VALUES ({', '.join('?' * len(names))})")
