"""Audits of a book without proof: compared with the venue's REST snapshot, fairly.

The snapshot and the stream are at different instants: the keeper calls
``audit_asked`` as it sends the request, the machine notes every level the
stream sets from then on (``_touched``), and those levels are left out; every
other level of the range both books cover must agree. A mixin of
:class:`rtkit.books.machine.BookMachine`, which holds the state it reads.
"""

from __future__ import annotations

from typing import Any

from rtkit.books import BookMessage, Step
from rtkit.books.levels import LocalBook

#: levels per side an audit compares against the venue's REST snapshot (the prices both
#: books' best ``AUDIT_LEVELS`` cover); a corrupted level deeper than that is not seen
AUDIT_LEVELS = 50
#: levels named in an audit's reason (the rest are counted)
_AUDIT_NAMED = 3


class BookAudits:
    """The audit steps of a book machine."""

    # set by the machine this is part of
    book: LocalBook
    state: str
    good: str

    def _init_audits(self) -> None:
        #: prices (bids, asks) the stream set since an audit was asked; None: no audit asked
        self._touched: tuple[set[float], set[float]] | None = None
        self.loads = 0  # books loaded from a snapshot: an audit asked before the last is void
        #: differences an audit that cannot confirm them found ("bid 99: local 5" → (is_ask,
        #: price)); ``recheck``: audit again at once to confirm them
        self._suspects: dict[str, tuple[bool, float]] = {}
        self.recheck = False
        self.audits = 0  # audits compared
        #: audits dropped: the book was (re)loaded after they were asked, or the stream
        #: stayed behind their snapshot
        self.audits_void = 0

    def _desync(self, step: Step, at: int, reason: str, seq: int | None,
                *args: Any) -> None:
        raise NotImplementedError

    def audit_asked(self) -> int:
        """An audit's snapshot is being asked now: note the levels the stream sets from here
        on (the snapshot may or may not hold those changes). Returns the token to give
        :meth:`audit`. A suspect level (an unconfirmed difference) the stream set since
        it was found is a suspect no more."""
        if self._suspects and self._touched is not None:
            bids, asks = self._touched
            self._suspects = {key: level for key, level in self._suspects.items()
                              if level[1] not in (asks if level[0] else bids)}
        self._touched = (set(), set())
        return self.loads

    def audit_given_up(self) -> None:
        """The audit asked could not be compared fairly (the stream stayed behind it)."""
        self._touched = None
        self.audits_void += 1

    def audit(self, snap: BookMessage, asked: int | None = None,
              confirm: bool = False) -> Step:
        """Compare an ``unverified`` book with a REST snapshot; a difference in the prices
        both books' top ``AUDIT_LEVELS`` of a side cover is a desync. ``asked``: the token
        of :meth:`audit_asked` (the levels the stream set since are left out; a book loaded
        since makes the audit void); None compares every level. ``confirm`` (a snapshot
        without the venue's time, so the stream may not have passed it): a difference is a
        desync only when the audit before found it too, on a level the stream has not set
        since; a new one makes the level a suspect and sets ``recheck`` (audit again now)."""
        step = Step()
        touched, self._touched = self._touched, None
        if self.state != self.good:
            return step
        if asked is not None and asked != self.loads:
            self.audits_void += 1
            return step
        self.audits += 1
        differences = audit_differences(self.book, snap, touched if asked is not None else None)
        if confirm:
            found = {_suspect_key(d): _suspect_level(d) for d in differences}
            differences = [d for d in differences if _suspect_key(d) in self._suspects]
            self._suspects = {k: level for k, level in found.items() if level is not None}
            if self._suspects and not differences:
                self.recheck = True
                self._touched = (set(), set())  # a suspect the stream sets is cleared
        if differences:
            self._suspects = {}
            named = "; ".join(differences[:_AUDIT_NAMED])
            more = len(differences) - _AUDIT_NAMED
            if more > 0:
                named += f"; {more} more"
            self._desync(step, snap.received_at, f"audit: {len(differences)} levels differ "
                         f"in the top {AUDIT_LEVELS} ({named})", None)
        return step


def _suspect_key(difference: str) -> str:
    """``bid 99: local 5 venue 1`` → ``bid 99: local 5`` (the venue's side may move)."""
    return difference.rsplit(" venue ", 1)[0]


def _suspect_level(difference: str) -> tuple[bool, float] | None:
    side, _, rest = difference.partition(" ")
    try:
        return side == "ask", float(rest.split(":", 1)[0])
    except ValueError:
        return None


def audit_differences(book: LocalBook, snap: BookMessage,
                      skip: tuple[set[float], set[float]] | None = None) -> list[str]:
    """The levels where ``book`` and the venue's snapshot disagree, in words (``bid 99:
    local 5 venue 1``): on each side, the prices that both books' best ``AUDIT_LEVELS``
    cover (a full window ends at its last price; a level beyond one book's window is not
    compared), less the prices in ``skip`` (bids, asks): those the stream changed
    since the snapshot was asked."""
    reference = LocalBook(None)
    for text_price, text_size in snap.bids:
        reference.set_level(False, text_price, text_size)
    for text_price, text_size in snap.asks:
        reference.set_level(True, text_price, text_size)
    differences = []
    for side, is_ask in (("bid", False), ("ask", True)):
        ours = book.float_levels(side, AUDIT_LEVELS)  # type: ignore[arg-type]
        theirs = reference.float_levels(side, AUDIT_LEVELS)  # type: ignore[arg-type]
        edges = [window[-1][0] for window in (ours, theirs) if len(window) == AUDIT_LEVELS]
        edge = (min(edges) if is_ask else max(edges)) if edges else None
        moot = skip[is_ask] if skip is not None else ()
        local, venue = dict(ours), dict(theirs)
        for price in sorted(set(local) | set(venue)):
            if price in moot or (edge is not None and (price > edge if is_ask else price < edge)):
                continue
            if local.get(price) != venue.get(price):
                differences.append(f"{side} {price:g}: local {local.get(price, 0.0):g} "
                                   f"venue {venue.get(price, 0.0):g}")
    return differences
