"""Which connection feeds each symbol when two carry the same streams.

With ``redundancy=2``, or in the overlap of a make-before-break handover, every book
message and every quote comes twice, once per connection, at different moments. A
book fed both copies breaks its continuity; a quote ring fed both holds each quote
twice. So each symbol is taken from one connection at a time, its *source*: the first
connection that brought something of that symbol. When the source ends, the symbol
moves to the newest other connection that brought something (of any symbol), or,
when none has yet, to the next one that brings that symbol something: the caller is
told which symbols moved, and why, so a book can go on from its new source (or resync
from it: ``rtkit.books.connections``).
"""

from __future__ import annotations


class Sources:
    """The source connection of each symbol (connections are the receiver's numbers)."""

    __slots__ = ("of", "feeding", "orphaned", "ignored", "switches")

    def __init__(self) -> None:
        #: symbol → the connection it is taken from
        self.of: dict[str, int] = {}
        #: connections that brought something and are not closed, newest last
        self.feeding: list[int] = []
        #: symbol → why its source ended with no other connection feeding yet
        self.orphaned: dict[str, str] = {}
        self.ignored = 0  # items of a connection that is not their symbol's source
        self.switches = 0  # symbols moved to another connection

    def seen(self, connection: int) -> None:
        """``connection`` brought something (call once per batch, before :meth:`admit`)."""
        if connection not in self.feeding:
            self.feeding.append(connection)

    def admit(self, symbol: str, connection: int) -> tuple[bool, str | None]:
        """Whether ``symbol``'s item from ``connection`` is taken, and, when it is the
        first from a connection that took the symbol over, why its old source ended."""
        if self.of.setdefault(symbol, connection) != connection:
            self.ignored += 1
            return False, None
        if self.orphaned and symbol in self.orphaned:
            self.switches += 1
            return True, self.orphaned.pop(symbol)
        return True, None

    def closed(self, connection: int, why: str) -> list[str]:
        """``connection`` ended: the symbols it fed that moved to another one now."""
        if connection in self.feeding:
            self.feeding.remove(connection)
        moved = []
        for symbol, source in list(self.of.items()):
            if source != connection:
                continue
            if self.feeding:
                self.of[symbol] = self.feeding[-1]
                self.switches += 1
                moved.append(symbol)
            else:  # the next connection that brings it something takes it over
                del self.of[symbol]
                self.orphaned[symbol] = why
        return moved

    def clear(self) -> None:
        """A reconnect after a hole: every symbol is taken afresh."""
        self.of.clear()
        self.orphaned.clear()
