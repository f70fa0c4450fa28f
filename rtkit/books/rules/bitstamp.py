"""Bitstamp ``diff_order_book_{pair}`` on the REST ``order_book`` snapshot.

No proof (no sequence, no checksum): the book is ``unverified`` and audited
against a REST snapshot. Start-up: buffer the diffs, fetch
``GET /api/v2/order_book/{pair}/``, drop the diffs older than its
``microtimestamp`` (they arrive first in real traffic), apply
the rest. A diff at the very microsecond of the snapshot is kept: Bitstamp's
diffs give absolute amounts, so re-applying one the snapshot holds changes
nothing, while dropping a newer one would lose it. ``timestamp`` is the
``microtimestamp`` in ns on both.
"""

from __future__ import annotations

from typing import Literal

from rtkit.books import BookMessage
from rtkit.books.rules._common import NoProof


class BitstampRule(NoProof):
    name = "bitstamp"
    snapshot_from: Literal["rest", "ws"] = "rest"

    def drop_before_snapshot(self, msg: BookMessage, snapshot: BookMessage) -> bool:
        return msg.timestamp < snapshot.timestamp


RULE = BitstampRule()
RULES = {"bitstamp": BitstampRule}  # found by rtkit.books.rules.rule_for
