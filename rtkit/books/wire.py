"""Reading a venue's price levels off the wire, the same way for every venue.

A level is the venue's ``[price, size, ...]`` (strings, as most venues send
them; extra fields such as Kraken v1's ``"r"`` or OKX's order counts are left
out). Both stay the venue's own text, which a checksum needs; each must read
as a plain finite number, the price above 0 and the size at least 0, or the
whole message is a ``bad_number`` reject: a book fed a wrong level would be
wrong from then on.
"""

from __future__ import annotations

from rtkit.validate import MAX_VALUE, Reject, plain_number_text

#: levels one book message may carry (Coinbase's full snapshot is ~46k levels a side)
MAX_LEVELS_PER_MESSAGE = 200_000


def levels(raw, name: str, plain: bool = False) -> list[tuple[str, str]]:
    """``[[price, size, ...], ...]`` → ``[(price, size)]`` of the venue's strings.

    ``plain``: the whole frame passed ``rtkit.venues.base.plain_text_frame``, which
    stands for the per-value text checks (a cheaper loop)."""
    if type(raw) is not list:
        raise Reject("bad_number", f"{name}={raw!r:.40} is not a list of levels")
    if len(raw) > MAX_LEVELS_PER_MESSAGE:
        raise Reject("bad_number", f"{name}: {len(raw)} levels > {MAX_LEVELS_PER_MESSAGE}")
    out = []
    for level in raw:
        try:
            price, size = level[0], level[1]
            if (type(price) is str and type(size) is str
                    and (plain or (plain_number_text(price) and plain_number_text(size)))):
                p, s = float(price), float(size)
                if 0.0 < p <= MAX_VALUE and 0.0 <= s <= MAX_VALUE:  # NaN fails both
                    out.append((price, size))
                    continue
        except (TypeError, ValueError, IndexError, KeyError):
            pass
        raise Reject("bad_number", f"{name}: {level!r:.60}")
    return out

