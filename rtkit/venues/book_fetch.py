"""A venue's REST book snapshot as the keeper's ``fetch``: ``symbol -> BookMessage``.

The keeper calls it on its worker threads (never the receive thread); one
:class:`rtkit.rest.RestClient` per fetch function keeps its connections alive
and spends the venue's shared request budget. A failure raises (the client's
``RestError``, or the parser's ``Reject``): the keeper logs it as a failed
snapshot and asks again later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rtkit.books import BookMessage

#: seconds a snapshot request may take before it counts as failed (and is asked again)
SNAPSHOT_TIMEOUT_S = 10.0

RestSnapshot = Callable[[object, str, int], BookMessage]


def rest_book_fetch(venue: str, rest_url: str | None,
                    rest_snapshot: RestSnapshot) -> Callable[[str], BookMessage]:
    """``fetch(symbol)``: ``venue``'s depth endpoint (at ``rest_url``, else its public API)
    read by ``rest_snapshot(body, symbol, received_at)`` (``rtkit.books.parse.<venue>``)."""
    lock = threading.Lock()
    clients: list = []

    def client():
        with lock:
            if not clients:
                from rtkit.rest.client import RestClient  # httpx loads with the first book

                clients.append(RestClient(venue, rest_url, timeout_s=SNAPSHOT_TIMEOUT_S))
            return clients[0]

    def fetch(symbol: str) -> BookMessage:
        rest = client()
        depth = rest.spec.depth
        if depth is None:
            raise ValueError(f"{venue} has no REST depth snapshot to start or audit books from")
        from rtkit.rest.client import MAX_DEPTH_BODY_BYTES

        body = rest.get(depth(symbol, None), MAX_DEPTH_BODY_BYTES)
        return rest_snapshot(body, symbol, time.time_ns())

    def close() -> None:
        """End a request in flight (the collector stops): its worker thread ends with it."""
        with lock:
            for rest in clients:
                rest.close()

    fetch.close = close  # type: ignore[attr-defined]  # the keeper's close() calls it
    return fetch
