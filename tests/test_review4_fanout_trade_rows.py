"""A flush's trades reach the primary sink behind a lake as the ring's ticks
(``TradeRows``), as they do without a lake: ``writer="process"`` pickles those in a
third of the time rows take (issue 17), and a row the primary refuses is still named as
the batch's own."""

from __future__ import annotations

from rtkit.kinds.trades import TradeRows
from rtkit.pipeline_queue import Batch
from rtkit.sinks.fanout import Fanout
from rtkit.store import Inserted

T0 = 1_764_000_000_000_000_000


class Primary:
    """Keeps what it was given; refuses the rows whose timestamp is ``bad_ts``."""

    where = "primary"
    is_open = True
    bad_ts = 2**63

    def __init__(self) -> None:
        self.given: list = []

    def write(self, batch, refused: list):
        self.given.append(batch.ticks)
        for row in batch.ticks:
            if row[3] == self.bad_ts:
                refused.append(("ticks", row, "OverflowError"))
        return Inserted(len(batch.ticks) - len(refused))


class Lake:
    where = "lake"
    is_open = True

    def __init__(self) -> None:
        self.rows: list = []

    def write(self, batch, refused=None):
        self.rows += list(batch.ticks)
        return len(batch.ticks)


def frames(n: int) -> list[tuple[int, list]]:
    return [(T0 + f, [("BTC-USDT", f * 10 + k, T0 + f * 10 + k, 100.0, 0.5, 1)
                      for k in range(10)]) for f in range(n)]


def test_the_primary_behind_a_lake_is_given_the_flushs_trade_rows_themselves():
    primary, lake = Primary(), Lake()
    ring = frames(30)
    ring[12][1][4] = ("BTC-USDT", 124, Primary.bad_ts, 100.0, 0.5, 1)
    batch = Batch(TradeRows("binance", ring), [], [])
    refused: list = []
    assert Fanout(primary, lake).write(batch, refused) == 299
    assert primary.given[0] is batch.ticks  # not a list of rows made in this process
    assert [row for _, row, _ in refused] == [batch.ticks[124]]
    assert refused[0][1] is batch.ticks[124]  # the batch's own row: set_aside finds it
    assert len(lake.rows) == 299 and batch.ticks[124] not in lake.rows
