"""Pieces the continuity rules share (one place for the wording of their reasons)."""

from __future__ import annotations

from rtkit.books import BookMessage


def need(msg: BookMessage, name: str, value: int | None) -> int:
    """A sequence field the rule needs; a parser bug if it is missing."""
    if value is None:
        raise ValueError(f"{msg.symbol}: a book message without {name} reached a rule "
                         "that needs it")
    return value


class NoProof:
    """A venue whose book messages carry no sequence and no checksum: every
    message follows, nothing can be verified (the book's state says
    ``unverified``; the keeper audits it against a REST snapshot)."""

    verified = False

    def drop_before_snapshot(self, msg: BookMessage, snapshot: BookMessage) -> bool:
        return False

    def bridges(self, msg: BookMessage, snapshot: BookMessage) -> str | None:
        return None

    def follows(self, msg: BookMessage, previous: BookMessage) -> str | None:
        return None

    def verify(self, book, msg: BookMessage) -> str | None:
        return None
