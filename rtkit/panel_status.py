"""The panel's status line and buttons: the light, the collector's state and reason,
and the timer that marks the view frozen in the browser.

A kernel restart cannot tell the browser anything: the views keep the last
values they were sent. So while a collector runs, the status line carries a CSS
timer that each refresh restarts; if no refresh comes for ``_stale_after_s``
seconds the browser itself greys the state out and says the view is frozen.
"""

from __future__ import annotations

import html
import threading
import time

import ipywidgets as widgets

_LIGHT_COLOURS = {
    "idle": "#9e9e9e", "connecting": "#f9a825", "live": "#2e7d32", "stale": "#ef6c00",
    "backoff": "#ef6c00", "storage_error": "#ad1457", "stopped": "#757575",
    "failed": "#c62828",
}
#: a CSS animation that each refresh restarts (the status HTML changes): if none comes,
#: the browser itself marks the state as frozen (the kernel restarted or shut down)
_STALE_CSS = (
    "<style>@keyframes rtkit-stale-show {to {opacity: 1}} "
    "@keyframes rtkit-stale-state {to {color: #9e9e9e; text-decoration: line-through}} "
    ".rtkit-stale-note {opacity: 0; animation: rtkit-stale-show 0.01s linear forwards} "
    ".rtkit-watched .rtkit-state {animation: rtkit-stale-state 0.01s linear forwards}"
    "</style>")


class PanelStatus:
    """The status part of a :class:`~rtkit.widgets.Panel`: the state shown, the buttons."""

    # set by the Panel that this status is part of
    status: widgets.HTML
    start_button: widgets.Button
    stop_button: widgets.Button
    inputs: dict[str, widgets.Widget]
    _ui_lock: threading.RLock
    _stale_after_s: float
    _refreshes: int

    def _set_controls(self, running: bool) -> None:
        self.start_button.disabled = running
        self.stop_button.disabled = not running
        for widget in self.inputs.values():
            widget.disabled = running

    def _set_status(self, state: str, reason: str = "", watched: bool = False) -> None:
        """The light, the state and its reason; ``watched`` (a refresh thread runs) adds the
        timer that marks the view frozen in the browser if the next refreshes never come."""
        colour = _LIGHT_COLOURS.get(state, _LIGHT_COLOURS["failed"])
        detail = f" <small>{html.escape(reason)}</small>" if reason else ""
        text = (f'<span style="color:{colour};font-size:1.4em">●</span> '
                f'<b class="rtkit-state">{html.escape(state)}</b>{detail}')
        if watched:
            self._refreshes += 1  # a new value each refresh: the browser restarts the timer
            delay = f"animation-delay: {self._stale_after_s:g}s"
            since = time.strftime("%H:%M:%S", time.gmtime())
            text = (f'{_STALE_CSS}<span class="rtkit-watched" data-refresh="{self._refreshes}">'
                    f'<style>.rtkit-watched .rtkit-state, .rtkit-stale-note {{{delay}}}</style>'
                    f'{text} <small class="rtkit-stale-note" style="color:#c62828">no update '
                    f'from the kernel since {since} UTC: if it was restarted or shut down, '
                    f'this view is frozen (run the cell again); if it is busy, wait</small>'
                    f'</span>')
        self.status.value = text

    def _show_problem(self, message: str) -> None:
        with self._ui_lock:
            self._set_status("failed", message)
