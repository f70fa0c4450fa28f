"""What a simulator dialect is: the server side of one venue's wire protocol.

A dialect is pure like an adapter: it turns client messages into replies and
trades into frames, and never touches a socket. The server in
:mod:`rtkit.sim.server` does the I/O and the faults.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rtkit.sim.market import SimTrade


@dataclass
class Session:
    """One client connection's state as the dialect sees it."""

    path: str = "/"
    symbols: list[str] = field(default_factory=list)  # subscribed, BASE-QUOTE

    def subscribe(self, symbols) -> list[str]:
        """Add symbols; returns those that were not subscribed yet."""
        new = [s for s in symbols if s not in self.symbols]
        self.symbols.extend(new)
        return new


class Dialect:
    """Server side of a venue protocol, for the local simulator."""

    venue: str
    #: URL path clients connect to (the simulator's ``url`` ends with it)
    path: str = "/"
    #: seconds between server heartbeat frames (None: none)
    heartbeat_interval_s: float | None = None
    #: trades per frame the venue sends at most
    max_batch: int = 1
    #: symbols the venue really lists, used by tests and demos (BASE-QUOTE)
    example_symbols: tuple[str, ...] = ("BTC-USDT", "ETH-USDT")

    def greeting(self, session: Session) -> list[str]:
        """Frames sent as soon as a client connects."""
        return []

    def on_message(self, text: str, session: Session) -> list[str]:
        """Replies to one client text message (subscribe → acks, ping → pong…)."""
        raise NotImplementedError

    def encode(self, trades: list[SimTrade]) -> list[str]:
        """Frames carrying these trades, batched the venue's way."""
        raise NotImplementedError

    def heartbeat(self, session: Session) -> str | None:
        return None

    def expected_trade_id(self, trade: SimTrade) -> str:
        """The ``trade_id`` text the venue's adapter must store for this trade."""
        return str(trade.trade_id)

    def subscription_error(self, symbol: str) -> str:
        """The venue's reply to a subscription it refuses (fault injection)."""
        raise NotImplementedError
