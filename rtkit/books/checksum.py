"""The venues' book checksums, computed from the venue's own price/size strings.

Kraken (v1 and v2) and OKX (legacy) hash a text built from the top levels of
the book. The text must be the venue's: a float round-trip turns ``0.80386470``
into ``0.8038647`` and the checksum no longer matches (seen in real captures), so the
local book keeps the strings it was sent and these functions read only those.

* Kraken: CRC32 of the top 10 asks (low→high) then the top 10 bids
  (high→low), each price and size with ``.`` removed and leading zeros
  stripped; compared unsigned (docs.kraken.com, guides "book-checksum-v2" and
  "book-checksum-v1").
* OKX (legacy, now always 0 on the wire): CRC32 of ``bid:size:ask:size:…``
  over the top 25 of each side, interleaved, compared as a signed 32-bit int.
"""

from __future__ import annotations

from collections.abc import Sequence
from zlib import crc32

#: levels per side Kraken's checksum covers, whatever the subscribed depth
KRAKEN_LEVELS = 10
#: levels per side OKX's legacy checksum covers
OKX_LEVELS = 25

Level = tuple[str, str]


def kraken_digits(text: str) -> str:
    """``"0.00100000"`` → ``"100000"``: the decimal point removed, then leading zeros."""
    return text.replace(".", "").lstrip("0")


def kraken_text(asks: Sequence[Level], bids: Sequence[Level]) -> str:
    """The text Kraken hashes; ``asks`` and ``bids`` best first (asks low→high,
    bids high→low), as :meth:`BookView.levels` gives them."""
    parts = [kraken_digits(p) + kraken_digits(q) for p, q in asks[:KRAKEN_LEVELS]]
    parts += [kraken_digits(p) + kraken_digits(q) for p, q in bids[:KRAKEN_LEVELS]]
    return "".join(parts)


def kraken_crc32(asks: Sequence[Level], bids: Sequence[Level]) -> int:
    """Kraken's book checksum (v1 and v2 share it), unsigned as the venue sends it."""
    return crc32(kraken_text(asks, bids).encode("ascii"))


def signed32(value: int) -> int:
    """An unsigned 32-bit value read as the signed int OKX prints."""
    return value - (1 << 32) if value >= 1 << 31 else value


def okx_text(bids: Sequence[Level], asks: Sequence[Level]) -> str:
    """``bid1:size:ask1:size:bid2:…`` over the top 25 levels; a side that runs
    out early just stops contributing (OKX's documented second example)."""
    parts: list[str] = []
    b, a = bids[:OKX_LEVELS], asks[:OKX_LEVELS]
    for i in range(max(len(b), len(a))):
        if i < len(b):
            parts += b[i]
        if i < len(a):
            parts += a[i]
    return ":".join(parts)


def okx_crc32(bids: Sequence[Level], asks: Sequence[Level]) -> int:
    """OKX's legacy order-book checksum, signed as the venue sends it."""
    return signed32(crc32(okx_text(bids, asks).encode("ascii")))
