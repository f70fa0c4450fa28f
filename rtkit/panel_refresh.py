"""The panel's refresh thread: one daemon thread per panel while its collector runs.

It only sets widget values (under the panel's lock) and never prints or
displays: setting a trait from a thread is supported by ipywidgets, while
output from a thread lands in whichever cell ran last.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rtkit.collector import Collector

log = logging.getLogger("rtkit")

#: how long closing a panel or stopping waits for the refresh thread
_JOIN_TIMEOUT_S = 2.0


class PanelRefresher:
    """The refresh thread of a :class:`~rtkit.widgets.Panel`: about every ``refresh_s``,
    until halted or the collector stops."""

    #: the refresh thread and the event that halts it, while one runs
    _updater: tuple[threading.Thread, threading.Event] | None = None
    # set by the Panel that this refresher is part of
    refresh_s: float

    refresh: Callable[[], None]
    _show_problem: Callable[[str], None]

    def _start_updater(self, collector: Collector) -> None:
        self._stop_updater()
        halt = threading.Event()
        thread = threading.Thread(target=self._update_loop, args=(collector, halt),
                                  daemon=True, name=f"rtkit-panel-{collector.name}")
        self._updater = (thread, halt)
        thread.start()

    def _stop_updater(self) -> None:
        updater, self._updater = self._updater, None
        if updater is None:
            return
        thread, halt = updater
        halt.set()
        if thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT_S)

    def _update_loop(self, collector: Collector, halt: threading.Event) -> None:
        """The refresh thread: about every ``refresh_s`` until halted or the collector stops."""
        while not halt.wait(self.refresh_s):
            finished = not collector.running  # read first, so the last refresh shows the end
            try:
                self.refresh()
            except Exception as exc:  # a bug: show it in the panel rather than die silently
                log.exception("rtkit: refreshing the panel of %s failed", collector.name)
                self._show_problem(f"panel refresh failed: {type(exc).__name__}: {exc}")
                return
            if finished:
                return
