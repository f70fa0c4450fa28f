"""``rtkit.lake.connect``: a DuckDB connection with one view per kind over the lake.

Each view is ``read_parquet(<root>/<kind>/*/*/*/*.parquet, hive_partitioning=true)``
with the lake's rule for each record once (:mod:`rtkit.lake.frames`) in SQL: of the
rows of one partition folder that share the kind's key, the one received first.
The rule is per folder (``date`` is part of the window's ``PARTITION BY``), which
is what lets DuckDB push ``venue``, ``symbol`` and ``date`` filters below it and
open only the folders a query needs::

    con = rtkit.lake.connect("data/lake")
    con.sql("SELECT count(*) FROM trades WHERE venue = 'binance' AND date = '2026-11-24'")

The views list the files at each query, so new files show at once. A query that
meets a file compaction removed between that listing and its reading fails with
an IO error; :func:`query` runs a query again in that case.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pandas as pd

from rtkit.kinds import Kind, kinds
from rtkit.lake.files import retrying
from rtkit.sinks.parquet import PARTITIONS

#: how DuckDB types the partition columns (not guessed from the values: a symbol "1000"
#: stays text)
_HIVE_TYPES = "{'venue': VARCHAR, 'symbol': VARCHAR, 'date': DATE}"
_DUCK_TYPES = {"TEXT": "VARCHAR", "INTEGER": "BIGINT", "REAL": "DOUBLE"}


def lake_kinds() -> list[Kind]:
    """The kinds the lake can hold: those with venue, symbol and timestamp columns."""
    return [k for k in kinds().values()
            if all(c in k.names for c in (*PARTITIONS, "timestamp"))]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_sql(root: str | Path, kind: Kind) -> str:
    """The ``SELECT`` of ``kind``'s view: each record once, the kind's columns, then ``date``."""
    columns = ", ".join(f'"{n}"' for n in kind.names)
    glob = os.path.join(os.path.abspath(root), kind.name, "*", "*", "*", "*.parquet")
    rest = [n for n in kind.names if n not in kind.key and n != "received_at"]
    order = ", ".join(f'"{n}"' for n in ("received_at", *rest))
    key = ", ".join(f'"{n}"' for n in dict.fromkeys((*PARTITIONS, "date", *kind.key)))
    return (f"SELECT {columns}, date FROM read_parquet({_literal(glob)}, hive_partitioning=true, "
            f"hive_types={_HIVE_TYPES}) QUALIFY row_number() OVER (PARTITION BY {key} "
            f"ORDER BY {order} NULLS LAST) = 1")


def _empty_view_sql(kind: Kind) -> str:
    types = ["TIMESTAMPTZ_NS" if c.frame.startswith("datetime64") else _DUCK_TYPES[c.sql]
             for c in kind.columns]
    columns = ", ".join(f'CAST(NULL AS {t}) AS "{c.name}"'
                        for t, c in zip(types, kind.columns, strict=True))
    return f"SELECT {columns}, CAST(NULL AS DATE) AS date WHERE false"


def connect(root: str | Path, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view per kind of the lake at ``root`` (``trades``,
    ``quotes``, …): the kind's columns plus ``date`` (the UTC day), each record once.

    Filter on ``venue``, ``symbol`` and ``date`` to read only those folders. A kind
    with no files yet has an empty view until the next ``connect``.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"no lake at '{root}'; pass the folder a collector's lake= "
                                "or `rtkit export DB --lake DIR` wrote")
    con = duckdb.connect(database)
    for kind in lake_kinds():
        has_files = next((root / kind.name).glob("*/*/*/[!_]*.parquet"), None) is not None
        body = view_sql(root, kind) if has_files else _empty_view_sql(kind)
        con.execute(f'CREATE OR REPLACE VIEW "{kind.name}" AS {body}')
    return con


def query(con: duckdb.DuckDBPyConnection, sql: str, params=None) -> pd.DataFrame:
    """``sql`` on ``con`` as a DataFrame, run again (a few times at most) while a file
    it listed vanished before it was read (compaction swapped it for its merged file)."""
    return retrying(lambda: con.execute(sql, params).df())
