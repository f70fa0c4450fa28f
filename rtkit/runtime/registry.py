"""The running collectors by name: re-running a notebook cell never leaves two writers.

A collector enters when it starts and leaves when its last thread ends, whether
``stop()`` waited for it or was interrupted; ``stop_all()`` (also run at exit)
stops every one still in it.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

_running: dict[str, Any] = {}
_running_lock = threading.Lock()


def running(name: str):
    """The collector of that name that is running, or None."""
    with _running_lock:
        return _running.get(name)


def any_running() -> bool:
    """Whether some collector of this process is running."""
    with _running_lock:
        return bool(_running)


def register(name: str, collector) -> None:
    with _running_lock:
        _running[name] = collector


def unregister(name: str, collector) -> None:
    """Take ``collector`` out, if it is still the one registered under ``name``."""
    with _running_lock:
        if _running.get(name) is collector:
            del _running[name]


def stop_all() -> None:
    """Stop every running collector (re-running a notebook from the top, or at exit)."""
    with _running_lock:
        collectors = list(_running.values())
    for c in collectors:
        c.stop()


atexit.register(stop_all)
