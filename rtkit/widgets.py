"""The notebook control panel: start, stop and watch a collector with ipywidgets.

``Panel(collector)`` (or ``collector.panel()``) shows Start / Stop buttons, a
status light with ``collector.status``, live counters from ``collector.stats``,
the newest ticks as a table and one live price chart per symbol. ``Panel()``
without a collector adds venue, symbols and URL inputs and creates the
collector when Start is clicked.

Threading, within what ipywidgets and ipykernel support: the notebook's
thread runs the button handlers; while a collector runs, one daemon thread per
panel (``rtkit-panel-<name>``) refreshes it about once a second. Both only set
widget values, under one lock, and never ``print`` or ``display``: setting a
trait from a thread is supported (ipywidgets' "Asynchronous Widgets" docs;
ipykernel 7.0 broke it, 7.1 fixed it), while output from a thread lands in
whichever cell ran last. The refresh thread ends when the collector stops or
the panel is closed; closing the panel never stops the collector unless
``close(stop_collector=True)`` asks for it.

The charts are bqplot marks: bqplot is built on ipywidgets, so a refresh
assigns new ``x``/``y`` arrays to a ``Lines`` mark from the refresh thread and
the browser moves the line in place (binary buffers over the widget comm, no
re-render of the figure, no image round-trip as with matplotlib or ipympl).
"""

from __future__ import annotations

import html
import logging
import re
import threading
from typing import TYPE_CHECKING

import bqplot
import ipywidgets as widgets
import numpy as np
import pandas as pd

from rtkit.store import StoreError
from rtkit.venues import venue_names

if TYPE_CHECKING:  # the panel is handed a collector, or builds one on Start (below)
    from rtkit.collector import Collector

log = logging.getLogger("rtkit")

#: (stats key, label) of the counters, in the order shown
COUNTERS = (
    ("ticks", "ticks"),
    ("ticks_per_s", "ticks/s"),
    ("stored", "stored"),
    ("pending", "pending"),
    ("rejected", "rejected"),
    ("duplicates", "duplicates"),
    ("reconnects", "reconnects"),
    ("gaps", "gaps"),
    ("last_message_age_s", "last message"),
)
_LIGHT_COLOURS = {
    "idle": "#9e9e9e", "connecting": "#f9a825", "live": "#2e7d32", "stale": "#ef6c00",
    "backoff": "#ef6c00", "storage_error": "#ad1457", "stopped": "#757575",
    "failed": "#c62828",
}
_TABLE_COLUMNS = ["time (UTC)", "venue", "symbol", "side", "price", "volume", "trade_id"]
#: how long closing a panel or stopping waits for the refresh thread
_JOIN_TIMEOUT_S = 2.0

#: counters that describe a running collection only
_LIVE_ONLY = ("ticks_per_s", "last_message_age_s")
_TABLE_STYLE = ("<style>.rtkit-table th, .rtkit-table td {padding: 1px 10px; "
                "text-align: right; font-variant-numeric: tabular-nums}</style>")

_open_panels: dict[str, Panel] = {}  # collector name → the panel showing it
_open_panels_lock = threading.Lock()


def counter_text(key: str, stats: dict, running: bool = True) -> str:
    """How the panel shows one counter of ``Collector.stats`` ("–" for none, and for
    rates and ages once the collector has stopped)."""
    value = stats.get(key)
    if value is None or (not running and key in _LIVE_ONLY):
        return "–"
    if key == "last_message_age_s":
        return f"{value:.1f} s"
    if key == "ticks_per_s":
        return f"{value:,.0f}"
    return f"{value:,}"


class Panel(widgets.VBox):
    """A live ipywidgets view of one collector, with Start and Stop.

    ``collector``: the collector to show and control. Without one, the panel
    has venue / symbols / URL inputs and Start creates the collector, passing
    ``collector_options`` (``db=``, ``name=``, ``flush_interval_s=``…) on.
    Start after Stop starts a fresh collector of the same venue, symbols,
    endpoint, database and name (SQLite keeps what the first one stored).

    ``rows``: ticks in the table; ``chart_ticks``: how many of the newest
    ticks the charts draw, each symbol's in its own chart; ``refresh_s``:
    seconds between refreshes.

    One panel per collector name: a new panel for the same name (re-running
    the cell) closes the previous panel, never the collector.
    """

    collector: Collector | None = None
    #: the refresh thread and the event that halts it, while one runs
    _updater: tuple[threading.Thread, threading.Event] | None = None

    def __init__(
        self,
        collector: Collector | None = None,
        *,
        venue: str = "binance",
        symbols: str | list[str] = "BTC-USDT",
        url: str | None = None,
        rows: int = 10,
        chart_ticks: int = 1000,
        refresh_s: float = 1.0,
        **collector_options,
    ) -> None:
        if collector is not None and collector_options:
            raise TypeError(
                f"options {', '.join(sorted(collector_options))} only apply when the panel "
                "creates the collector; pass them to rtkit.collect(...) instead")
        if not refresh_s > 0:
            raise ValueError(f"refresh_s must be > 0 seconds (e.g. 1.0), not {refresh_s!r}")
        self.rows = int(rows)
        self.chart_ticks = int(chart_ticks)
        self.refresh_s = float(refresh_s)
        self._collector_options = collector_options
        self._ui_lock = threading.RLock()
        self._lines: dict[str, bqplot.Lines] = {}

        self.status = widgets.HTML().add_class("rtkit-status")
        self.title = widgets.HTML()
        self.start_button = widgets.Button(description="Start", icon="play",
                                           button_style="success").add_class("rtkit-start")
        self.stop_button = widgets.Button(description="Stop", icon="stop",
                                          button_style="danger").add_class("rtkit-stop")
        self.start_button.on_click(self._on_start)
        self.stop_button.on_click(self._on_stop)
        self.inputs: dict[str, widgets.Widget] = {}
        if collector is None:
            names = venue_names()
            self.inputs = {
                "venue": widgets.Dropdown(options=names, value=venue if venue in names else None,
                                          description="venue"),
                "symbols": widgets.Text(
                    value=symbols if isinstance(symbols, str) else ", ".join(symbols),
                    description="symbols", placeholder="BTC-USDT, ETH-USDT"),
                "url": widgets.Text(value=url or "", description="url",
                                    placeholder="the venue's public endpoint"),
            }
        self.counters = {key: widgets.Label("–").add_class(f"rtkit-{key}")
                         for key, _ in COUNTERS}
        counter_boxes = [
            widgets.VBox([widgets.HTML(f"<small>{label}</small>"), self.counters[key]],
                         layout=widgets.Layout(min_width="90px"))
            for key, label in COUNTERS
        ]
        self.charts = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        self.table = widgets.HTML().add_class("rtkit-table")
        header = widgets.HBox([self.status, self.start_button, self.stop_button],
                              layout=widgets.Layout(align_items="center"))
        parts = [header, self.title]
        if self.inputs:
            parts.append(widgets.HBox(list(self.inputs.values())))
        parts += [widgets.HBox(counter_boxes, layout=widgets.Layout(flex_flow="row wrap")),
                  self.charts, self.table]
        super().__init__(parts)
        self.add_class("rtkit-panel")
        if collector is not None:
            self._attach(collector)
            if collector.running:
                self._start_updater(collector)
        else:
            self.refresh()

    # --- what the buttons do (notebook thread) ---------------------------------------
    def _on_start(self, _button=None) -> None:
        if self.collector is not None and self.collector.running:
            return
        try:
            collector = self._next_collector().start()
        except (ValueError, TypeError, RuntimeError, StoreError) as exc:
            self._show_problem(f"cannot start: {exc}")
            return
        self._attach(collector)
        self._start_updater(collector)

    def _on_stop(self, _button=None) -> None:
        if self.collector is None:
            return
        self.collector.stop()
        self._stop_updater()
        self.refresh()

    def _next_collector(self) -> Collector:
        """The collector Start should start: the given one if it never ran, else a new one."""
        if self.inputs:
            symbols = [s for s in re.split(r"[,\s]+", self.inputs["symbols"].value) if s]
            venue = self.inputs["venue"].value
            if venue is None:
                raise ValueError("choose a venue first")
            # here, not at the top: the collector module imports this one for panel()
            from rtkit.collector import Collector

            return Collector(venue, symbols, url=self.inputs["url"].value.strip() or None,
                             **self._collector_options)
        old = self.collector
        assert old is not None  # a panel without inputs was given its collector
        if old.started_at_ns is None:
            return old
        return old.again()

    def _attach(self, collector: Collector) -> None:
        """Show ``collector`` from now on, replacing any other panel of the same name."""
        with _open_panels_lock:
            previous = _open_panels.get(collector.name)
            _open_panels[collector.name] = self
        if previous is not None and previous is not self:
            previous.close()
        if self.collector is not None and self.collector.name != collector.name:
            self._forget(self.collector.name)
        self.collector = collector
        with self._ui_lock:
            if list(self._lines) != collector.symbols:
                old_charts = self.charts.children
                self._lines = {s: _price_line() for s in collector.symbols}
                self.charts.children = [_price_figure(symbol, line)
                                        for symbol, line in self._lines.items()]
                for chart in old_charts:
                    _close_tree(chart)
        self.refresh()

    def _forget(self, name: str) -> None:
        with _open_panels_lock:
            if _open_panels.get(name) is self:
                del _open_panels[name]

    # --- refreshing --------------------------------------------------------------------
    def refresh(self) -> None:
        """Set every widget from the collector's current state (any thread)."""
        with self._ui_lock:
            collector = self.collector
            if collector is None:
                self._set_controls(running=False)
                self._set_status("idle", "choose a venue and symbols, then Start")
                return
            running = collector.running
            stats = collector.stats
            status = collector.status
            self._set_controls(running)
            self._set_status(str(status), status.reason)
            self.title.value = (f"<code>{html.escape(collector.name)}</code> → "
                                f"<code>{html.escape(str(collector.db))}</code>")
            for key, label in self.counters.items():
                label.value = counter_text(key, stats, running)
            newest = collector.tail(max(self.rows, self.chart_ticks))
            self.table.value = _tick_table(newest.tail(self.rows))
            charted = newest.tail(self.chart_ticks)
            for symbol, line in self._lines.items():
                prices = charted[charted["symbol"] == symbol]
                with line.hold_sync():
                    line.x = prices["timestamp"].dt.tz_localize(None).to_numpy()
                    line.y = prices["price"].to_numpy()

    def _set_controls(self, running: bool) -> None:
        self.start_button.disabled = running
        self.stop_button.disabled = not running
        for widget in self.inputs.values():
            widget.disabled = running

    def _set_status(self, state: str, reason: str = "") -> None:
        colour = _LIGHT_COLOURS.get(state, _LIGHT_COLOURS["failed"])
        detail = f" <small>{html.escape(reason)}</small>" if reason else ""
        self.status.value = (f'<span style="color:{colour};font-size:1.4em">●</span> '
                             f'<b class="rtkit-state">{html.escape(state)}</b>{detail}')

    def _show_problem(self, message: str) -> None:
        with self._ui_lock:
            self._set_status("failed", message)

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

    def __repr__(self) -> str:
        """What a notebook shows where widgets cannot render (GitHub, plain text)."""
        if self.collector is None:
            return "<rtkit panel: no collector yet>"
        return f"<rtkit panel of {self.collector.name!r}: {self.collector.status}>"

    # --- closing ---------------------------------------------------------------------
    def close(self, stop_collector: bool = False) -> None:
        """Stop refreshing and close every widget of the panel.

        The collector keeps collecting unless ``stop_collector=True``.
        """
        self._stop_updater()
        collector = self.collector
        if collector is not None:
            if stop_collector:
                collector.stop()
            self._forget(collector.name)
        for child in self.children:
            _close_tree(child)
        super().close()


def _price_line() -> bqplot.Lines:
    return bqplot.Lines(x=np.array([], "datetime64[ns]"), y=np.array([], float),
                        scales={"x": bqplot.DateScale(), "y": bqplot.LinearScale()})


def _price_figure(symbol: str, line: bqplot.Lines) -> bqplot.Figure:
    axes = [bqplot.Axis(scale=line.scales["x"], side="bottom", tick_format="%H:%M:%S",
                       num_ticks=4),
            bqplot.Axis(scale=line.scales["y"], side="left", tick_format=",.2f")]
    return bqplot.Figure(
        marks=[line], axes=axes, title=symbol, animation_duration=0,
        fig_margin={"top": 40, "bottom": 30, "left": 80, "right": 35},
        layout=widgets.Layout(width="420px", height="240px"),
    )


def _tick_table(ticks: pd.DataFrame) -> str:
    """The newest ticks first, as a small HTML table."""
    if ticks.empty:
        return "<i>no ticks yet</i>"
    times = ticks["timestamp"].dt.strftime("%H:%M:%S.%f").str[:-3]
    view = ticks.iloc[::-1].assign(**{_TABLE_COLUMNS[0]: times})
    return _TABLE_STYLE + view[_TABLE_COLUMNS].to_html(
        index=False, border=0, na_rep="", float_format=lambda v: f"{v:,.10g}")


def _close_tree(widget: widgets.Widget) -> None:
    """Close a widget and every widget it holds (children, marks, axes, scales, layouts),
    so nothing stays in ipywidgets' global registry after the panel is gone."""
    seen: set[int] = set()
    todo = [widget]
    while todo:
        w = todo.pop()
        if id(w) in seen:
            continue
        seen.add(id(w))
        for name in w.keys:
            value = getattr(w, name, None)
            items = value.values() if isinstance(value, dict) else \
                value if isinstance(value, (list, tuple)) else (value,)
            todo.extend(i for i in items if isinstance(i, widgets.Widget))
        w.close()
