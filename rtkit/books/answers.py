"""A replay's side of the keeper: answers taken from the recording, not the network.

A mixin of :class:`rtkit.books.keeper.BookKeeper` (``replaying=True``):
``rtkit.replay`` hands it each recorded REST answer at the place the live run
took it, and at the end names the requests the recording held no answer to.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rtkit.books import BookMessage, Step


class RecordedAnswers:
    """``give_answer`` and ``cannot_answer``: the recording in place of the venue."""

    # set by the keeper this is part of
    _lock: Any
    machines: dict
    unanswered: dict

    def _taken(self, out: Step, symbol: str, purpose: str, msg: BookMessage | None,
               error: str, now: int) -> None:
        raise NotImplementedError

    def give_answer(self, symbol: str, purpose: str, msg: BookMessage | None, error: str,
                    at: int) -> Step:
        """A replay: the recorded answer taken at ``at`` in the live run, taken now."""
        out = Step()
        with self._lock:
            self._taken(out, symbol, purpose, msg, error, at)
        return out

    def cannot_answer(self, symbols: Iterable[str]) -> Step:
        """A replay's end: a ``book_events`` row for each of these symbols' requests that
        the recording holds no answer to (made before recordings kept them?)."""
        out = Step()
        with self._lock:
            for symbol in symbols:
                at, purpose = self.unanswered.pop(symbol)
                machine = self.machines[symbol]
                machine._event(out, machine.state, machine.state, at,
                               f"replay: the recording holds no answer to the {purpose} "
                               "snapshot asked here (recorded before rtkit kept REST answers?); "
                               f"the book stays {machine.state}", None)
        return out
