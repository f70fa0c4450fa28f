"""Kraken WebSocket v1 ``book`` (``as``/``bs`` snapshot, ``a``/``b`` updates).

Same checksum as v2 (Kraken's guide "Book checksum (WebSocket v1)"), field
``c`` of an update; snapshots carry none (so a snapshot verifies trivially).
Real traffic (seen in real captures): a level republished with a 4th field ``"r"``
is a normal update, and a price repeated inside one message is applied in the
order sent — the parser keeps both as they come, and the local book applies
levels in order. Truncate to the subscribed depth before checking.
"""

from __future__ import annotations

from rtkit.books.rules.kraken import KrakenRule


class KrakenV1Rule(KrakenRule):
    name = "kraken-v1"


RULE = KrakenV1Rule()
RULES = {"kraken-v1": KrakenV1Rule}  # found by rtkit.books.rules.rule_for
