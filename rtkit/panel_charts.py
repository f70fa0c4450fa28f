"""The panel's price charts: one bqplot figure per symbol over a time window.

bqplot is built on ipywidgets, so a refresh assigns new ``x``/``y`` arrays to a
``Lines`` mark from the refresh thread and the browser moves the line in place.
The axes' range, tick values and formats are set here (``time_ticks``,
``price_ticks``): a fixed window with labels that never repeat, a handful of
price labels with as many decimals as their step needs.
"""

from __future__ import annotations

import math
import threading

import bqplot
import ipywidgets as widgets
import numpy as np
import pandas as pd

from rtkit.panel_books import quote_lines

#: most points one chart draws; a window with more trades is thinned evenly (newest kept)
DEFAULT_CHART_POINTS = 1_000
#: most rows of the ring one refresh reads for the charts (~10 MB of DataFrame)
MAX_CHART_ROWS = 200_000
#: x tick steps in seconds: the smallest giving at most _X_TICKS ticks is used
_TIME_STEPS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30,
                 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_X_TICKS = 5
_Y_TICKS = 5
#: price tick steps, times a power of ten
_PRICE_STEPS = (1, 2, 2.5, 5, 10)


class PanelCharts:
    """The charts part of a :class:`~rtkit.widgets.Panel`: which charts, and drawing them."""

    # set by the Panel that these charts are part of
    charts: widgets.HBox
    rows: int
    window_s: float
    chart_ticks: int
    _ui_lock: threading.RLock
    _charts: dict[str, PriceChart]

    def _show_symbols(self, symbols: list[str]) -> None:
        """One chart per symbol, in order (the old ones closed); under ``_ui_lock``."""
        if list(self._charts) != symbols:
            old_charts = self.charts.children
            self._charts = {s: PriceChart(s) for s in symbols}
            self.charts.children = [chart.figure for chart in self._charts.values()]
            for chart in old_charts:
                close_tree(chart)

    @property
    def _lines(self) -> dict[str, bqplot.Lines]:
        """Each symbol's price line."""
        return {symbol: chart.line for symbol, chart in self._charts.items()}

    def _rows_to_read(self, stats: dict) -> int:
        """Enough of the newest rows for the table and a chart window at the current rate."""
        rate = stats.get("ticks_per_s") or 0.0
        if not rate:  # starting, or stopped: whatever the ring holds, up to the cap
            return MAX_CHART_ROWS
        return max(self.rows, min(MAX_CHART_ROWS, int(rate * self.window_s * 1.5) + 1_000))

    def _draw_charts(self, ticks: pd.DataFrame, quotes: pd.DataFrame | None = None) -> None:
        """Each symbol's prices over the same window, ending at the newest trade (of any
        symbol, so the charts share their time axis); with ``quotes`` (the newest of the
        quotes ring), its best bid and ask as step lines around them, the window then
        ending at the newest trade or quote."""
        if ticks.empty:
            for chart in self._charts.values():
                chart.draw_nothing()
            return
        times = ticks["timestamp"].dt.tz_localize(None).to_numpy()
        end = times.max()
        if quotes is not None and not quotes.empty:  # quotes newer than the last trade too
            end = max(end, quotes["timestamp"].max().tz_localize(None).to_datetime64())
        # the last window_s seconds; a collection younger than that fills the whole width
        start = max(end - np.timedelta64(int(self.window_s * 1e9), "ns"), times.min())
        recent = times >= start
        symbols = ticks["symbol"].to_numpy()
        prices = ticks["price"].to_numpy()
        for symbol, chart in self._charts.items():
            mine = recent & (symbols == symbol)
            chart.draw(times[mine], prices[mine], start, end, self.chart_ticks,
                       self.window_s, quote_lines(quotes, symbol, start, end))


class PriceChart:
    """One symbol's price over a time window, as a bqplot figure.

    The panel sets the axes itself rather than letting the browser pick: the x range
    is the window (so the axis does not jump as trades arrive), the tick values come
    from :func:`time_ticks` and :func:`price_ticks` (labels that never repeat, a few
    price labels with the decimals their step needs), and with no trades in the
    window the axes are hidden and the title says so (no 0-1 axis at 00:00:00).
    """

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.line = bqplot.Lines(x=np.array([], "datetime64[ns]"), y=np.array([], float),
                                 scales={"x": bqplot.DateScale(), "y": bqplot.LinearScale()})
        # the best bid and ask (collected quotes) as steps: each holds until the next quote
        self.bid_line, self.ask_line = (
            bqplot.Lines(x=np.array([], "datetime64[ns]"), y=np.array([], float),
                         scales=self.line.scales, colors=[colour], stroke_width=1,
                         interpolation="step-after", labels=[label])
            for colour, label in (("#2e7d32", "bid"), ("#c62828", "ask")))
        self.x_axis = bqplot.Axis(scale=self.line.scales["x"], side="bottom", visible=False)
        self.y_axis = bqplot.Axis(scale=self.line.scales["y"], side="left", visible=False,
                                  tick_format=",.2f")
        self.figure = bqplot.Figure(
            marks=[self.bid_line, self.ask_line, self.line], axes=[self.x_axis, self.y_axis],
            title=self._empty_title(),
            animation_duration=0,
            fig_margin={"top": 40, "bottom": 30, "left": 80, "right": 35},
            layout=widgets.Layout(width="420px", height="240px"),
        ).add_class("rtkit-chart")

    def _empty_title(self, window_s: float | None = None) -> str:
        if window_s is None:
            return f"{self.symbol}: no ticks yet"
        return f"{self.symbol}: no ticks in the last {window_s:g} s"

    def draw_nothing(self, window_s: float | None = None) -> None:
        with self.figure.hold_sync(), self.line.hold_sync():
            self.line.x = np.array([], "datetime64[ns]")
            self.line.y = np.array([], float)
            self._draw_quotes(None)
            self.x_axis.visible = self.y_axis.visible = False
            self.figure.title = self._empty_title(window_s)

    def draw(self, times: np.ndarray, prices: np.ndarray, start: np.datetime64,
             end: np.datetime64, most_points: int, window_s: float,
             quotes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
        """``times`` (datetime64[ns], UTC, oldest first) and ``prices`` within
        ``start``..``end``, thinned evenly to ``most_points`` (the newest kept); ``quotes``
        (times, bids, asks) the same way, drawn as the bid and ask lines."""
        if len(times) == 0:
            self.draw_nothing(window_s)
            return
        times, prices = _thinned(most_points, times, prices)
        if quotes is not None:
            quotes = _thinned(most_points, *quotes)
        low, high = float(prices.min()), float(prices.max())
        if quotes is not None:  # the axis holds the quotes too
            low, high = min(low, float(np.nanmin(quotes[1]))), max(high,
                                                                   float(np.nanmax(quotes[2])))
        x_ticks, x_format = time_ticks(start, end)
        y_min, y_max, y_ticks, y_format = price_ticks(low, high)
        x_scale, y_scale = self.line.scales["x"], self.line.scales["y"]
        with self.figure.hold_sync(), self.line.hold_sync(), x_scale.hold_sync(), \
                y_scale.hold_sync(), self.x_axis.hold_sync(), self.y_axis.hold_sync():
            x_scale.min, x_scale.max = start, end
            y_scale.min, y_scale.max = y_min, y_max
            self.x_axis.tick_values, self.x_axis.tick_format = x_ticks, x_format
            self.y_axis.tick_values, self.y_axis.tick_format = y_ticks, y_format
            self.x_axis.visible = self.y_axis.visible = True
            self.line.x, self.line.y = times, prices
            self._draw_quotes(quotes)
            self.figure.title = self.symbol

    def _draw_quotes(self, quotes: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> None:
        if quotes is None:
            quotes = (np.array([], "datetime64[ns]"), np.array([], float), np.array([], float))
        times, bids, asks = quotes
        with self.bid_line.hold_sync(), self.ask_line.hold_sync():
            self.bid_line.x, self.bid_line.y = times, bids
            self.ask_line.x, self.ask_line.y = times, asks


def _thinned(most_points: int, *columns: np.ndarray):
    """The columns thinned evenly to ``most_points`` rows (the first and newest kept)."""
    n = len(columns[0])
    if n <= most_points:
        return columns
    keep = np.unique(np.linspace(0, n - 1, most_points).round().astype(int))
    return tuple(c[keep] for c in columns)


def time_ticks(start: np.datetime64, end: np.datetime64,
               most: int = _X_TICKS) -> tuple[np.ndarray, str]:
    """Tick times for an axis from ``start`` to ``end``: at most ``most`` + 1, on a round
    step (1 s, 15 s, 5 min...), with a d3 time format as fine as that step and no finer,
    so no two labels read the same."""
    start_ns, end_ns = np.asarray([start, end], dtype="datetime64[ns]").astype(np.int64).tolist()
    span_s = max(end_ns - start_ns, 1) / 1e9
    step_s = next((s for s in _TIME_STEPS_S if span_s / s <= most), _TIME_STEPS_S[-1])
    step_ns = round(step_s * 1e9)
    first = -(-start_ns // step_ns) * step_ns
    ticks = np.arange(first, end_ns + 1, step_ns, dtype=np.int64).astype("datetime64[ns]")
    fmt = "%H:%M:%S.%L" if step_s < 1 else "%H:%M:%S" if step_s < 60 else "%H:%M"
    return ticks, fmt


def price_ticks(low: float, high: float,
                most: int = _Y_TICKS) -> tuple[float, float, np.ndarray, str]:
    """An axis range around ``low``..``high`` with at most ``most`` ticks on a round step
    (1, 2, 2.5 or 5 times a power of ten) and a d3 format with the decimals that step
    needs: a 65,000 price moving by 20 gets ``65,005 65,010 ...``, not ``65,004.87``.
    Returns (axis min, axis max, tick values, format)."""
    if not high > low:  # one price: a small range around it
        pad = max(abs(low) * 1e-4, 1e-9)
        low, high = low - pad, high + pad
    raw = (high - low) / max(most - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for multiple in (*_PRICE_STEPS, 20, 25, 50, 100):
        step = multiple * power
        first, last = math.floor(low / step), math.ceil(high / step)
        if last - first + 1 <= most:
            break
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if round(step / 10 ** -decimals, 6) % 1:  # 2.5 x 10^k needs one more decimal
        decimals += 1
    ticks = np.round(np.arange(first, last + 1) * step, decimals)
    return float(ticks[0]), float(ticks[-1]), ticks, f",.{decimals}f"


def close_tree(widget: widgets.Widget) -> None:
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
