"""Coinbase Exchange ``level2_batch`` (snapshot, then ``l2update`` batches).

No proof: L2 messages carry no sequence and no checksum, so the book is
``unverified`` and the keeper audits it against ``GET /products/{id}/book?level=2``
every ``audit_every_s``. The snapshot comes over the socket.
"""

from __future__ import annotations

from typing import Literal

from rtkit.books.rules._common import NoProof


class CoinbaseExchangeRule(NoProof):
    name = "coinbase-exchange"
    snapshot_from: Literal["rest", "ws"] = "ws"


RULE = CoinbaseExchangeRule()
RULES = {"coinbase-exchange": CoinbaseExchangeRule}  # found by rtkit.books.rules.rule_for
