"""The notebook control panel: start, stop and watch a collector with ipywidgets.

``Panel(collector)`` (or ``collector.panel()``) shows Start / Stop buttons, a
status light with ``collector.status``, live counters from ``collector.stats``,
the newest ticks as a table and one live price chart per symbol over the last
``window_s`` seconds; with quotes collected, each chart also draws the best bid
and ask, and with books collected, each book's state as a light beside a depth
ladder of its top ``LADDER_DEPTH`` levels (:mod:`rtkit.panel_books`). ``Panel()``
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
The panel sets each chart's axis range, tick values and tick formats itself
(``time_ticks``, ``price_ticks``): a fixed window with labels that never repeat,
a handful of price labels with as many decimals as their step needs.

A kernel restart cannot tell the browser anything: the views keep the last
values they were sent (``live``). So while a collector runs, the status line
carries a CSS timer that each refresh restarts; if no refresh comes for
``_stale_after_s`` seconds the browser itself greys the state out and says the
view is frozen. Widget state is never stored in the notebooks (``make
notebooks`` passes ``store_widget_state=False``), so a reopened notebook shows
no stale panel either.

The pieces: this module is the panel itself (its widgets, the buttons, what a
refresh sets); :mod:`rtkit.panel_charts` the charts, :mod:`rtkit.panel_status`
the status line and its frozen-view timer, :mod:`rtkit.panel_refresh` the
refresh thread.
"""

from __future__ import annotations

import html
import re
import threading
from typing import TYPE_CHECKING

import ipywidgets as widgets
import pandas as pd

from rtkit.panel_books import PanelBooks
from rtkit.panel_charts import (
    DEFAULT_CHART_POINTS,
    MAX_CHART_ROWS,
    PanelCharts,
    PriceChart,
    close_tree,
    price_ticks,
    time_ticks,
)
from rtkit.panel_refresh import PanelRefresher
from rtkit.panel_status import PanelStatus
from rtkit.store import StoreError
from rtkit.venues import venue_names

if TYPE_CHECKING:  # the panel is handed a collector, or builds one on Start (below)
    from rtkit.collector import Collector

__all__ = ["COUNTERS", "DEFAULT_CHART_POINTS", "DEFAULT_WINDOW_S", "MAX_CHART_ROWS", "Panel",
           "PriceChart", "counter_text", "price_ticks", "time_ticks"]

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
    ("gaps_open", "open gaps"),
    ("completeness", "complete"),
    ("last_message_age_s", "last message"),
)
_TABLE_COLUMNS = ["time (UTC)", "venue", "symbol", "side", "price", "volume", "trade_id"]
#: seconds of trades each chart shows by default, ending at the newest trade
DEFAULT_WINDOW_S = 60.0

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
    if key == "completeness":
        return f"{100 * value:.2f} %"
    if key == "ticks_per_s":
        return f"{value:,.0f}"
    return f"{value:,}"


class Panel(PanelCharts, PanelBooks, PanelStatus, PanelRefresher, widgets.VBox):
    """A live ipywidgets view of one collector, with Start and Stop.

    ``collector``: the collector to show and control. Without one, the panel
    has venue / symbols / URL inputs and Start creates the collector, passing
    ``collector_options`` (``db=``, ``name=``, ``flush_interval_s=``…) on.
    Start after Stop starts a fresh collector of the same venue, symbols,
    endpoint, database and name (SQLite keeps what the first one stored).

    ``rows``: ticks in the table; ``window_s``: seconds of trades each
    symbol's chart shows, ending at the newest trade; ``chart_ticks``: most
    points one chart draws (more trades in the window are thinned evenly);
    ``refresh_s``: seconds between refreshes.

    The counters are those of the collector shown: Start after Stop starts a
    new run, whose counters begin at 0 (the line under them says so); what
    earlier runs stored stays in the database.

    One panel per collector name: a new panel for the same name (re-running
    the cell) closes the previous panel, never the collector.
    """

    collector: Collector | None = None

    def __init__(
        self,
        collector: Collector | None = None,
        *,
        venue: str = "binance",
        symbols: str | list[str] = "BTC-USDT",
        url: str | None = None,
        rows: int = 10,
        window_s: float = DEFAULT_WINDOW_S,
        chart_ticks: int = DEFAULT_CHART_POINTS,
        refresh_s: float = 1.0,
        **collector_options,
    ) -> None:
        if collector is not None and collector_options:
            raise TypeError(
                f"options {', '.join(sorted(collector_options))} only apply when the panel "
                "creates the collector; pass them to rtkit.collect(...) instead")
        if not refresh_s > 0:
            raise ValueError(f"refresh_s must be > 0 seconds (e.g. 1.0), not {refresh_s!r}")
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0 seconds (e.g. 60), not {window_s!r}")
        if not chart_ticks >= 2:
            raise ValueError(f"chart_ticks must be >= 2 points (e.g. 1000), not {chart_ticks!r}")
        self.rows = int(rows)
        self.window_s = float(window_s)
        self.chart_ticks = int(chart_ticks)
        self.refresh_s = float(refresh_s)
        #: seconds without a refresh after which the browser shows the view as frozen
        self._stale_after_s = max(5.0, 3 * self.refresh_s)
        self._collector_options = collector_options
        self._ui_lock = threading.RLock()
        self._charts = {}
        self._ladders = {}
        self._refreshes = 0
        self._restarted = False  # Start began a second run: its counters restarted

        # buttons first, at a fixed width: a status text that grows cannot move them
        button_layout = widgets.Layout(width="90px", flex="0 0 auto")
        self.status = widgets.HTML(layout=widgets.Layout(flex="1 1 auto", min_width="0")
                                   ).add_class("rtkit-status")
        self.title = widgets.HTML()
        self.run_note = widgets.HTML().add_class("rtkit-run")
        self.start_button = widgets.Button(description="Start", icon="play",
                                           button_style="success", layout=button_layout,
                                           ).add_class("rtkit-start")
        self.stop_button = widgets.Button(description="Stop", icon="stop",
                                          button_style="danger", layout=button_layout,
                                          ).add_class("rtkit-stop")
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
        self.books = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap",
                                                        grid_gap="24px"))
        self.table = widgets.HTML().add_class("rtkit-table")
        header = widgets.HBox([self.start_button, self.stop_button, self.status],
                              layout=widgets.Layout(align_items="flex-start"))
        parts = [header, self.title]
        if self.inputs:
            parts.append(widgets.HBox(list(self.inputs.values())))
        parts += [widgets.HBox(counter_boxes, layout=widgets.Layout(flex_flow="row wrap")),
                  self.run_note, self.charts, self.books, self.table]
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
        earlier_run = self.collector is not None and self.collector.started_at_ns is not None
        try:
            collector = self._next_collector().start()
        except (ValueError, TypeError, RuntimeError, StoreError) as exc:
            self._show_problem(f"cannot start: {exc}")
            return
        self._restarted = self._restarted or earlier_run
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
            self._show_symbols(collector.symbols)
            self._show_books(collector)
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
            self._set_status(str(status), status.reason, watched=running)
            self.title.value = (f"<code>{html.escape(collector.name)}</code> → "
                                f"<code>{html.escape(str(collector.db))}</code>")
            for key, label in self.counters.items():
                label.value = counter_text(key, stats, running)
            self.run_note.value = self._run_text(collector)
            newest = collector.tail(self._rows_to_read(stats))
            self.table.value = _tick_table(newest.tail(self.rows))
            self._draw_charts(newest, self._newest_quotes(collector))
            self._draw_books(collector)

    def _run_text(self, collector: Collector) -> str:
        if collector.started_at_ns is None:
            return ""
        since = pd.Timestamp(collector.started_at_ns, unit="ns").strftime("%H:%M:%S")
        text = f"counters of this run, since {since} UTC"
        if self._restarted:
            text += (": Start began a new run, so they started again from 0; "
                     "what earlier runs stored is still in the database")
        return f"<small>{html.escape(text)}</small>"

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
            close_tree(child)
        super().close()


def _tick_table(ticks: pd.DataFrame) -> str:
    """The newest ticks first, as a small HTML table."""
    if ticks.empty:
        return "<i>no ticks yet</i>"
    times = ticks["timestamp"].dt.strftime("%H:%M:%S.%f").str[:-3]
    view = ticks.iloc[::-1].assign(**{_TABLE_COLUMNS[0]: times})
    return _TABLE_STYLE + view[_TABLE_COLUMNS].to_html(
        index=False, border=0, na_rep="", float_format=lambda v: f"{v:,.10g}")
