"""Turn what a venue sends into the normalised tick's types, or say exactly why not.

Every function here is pure. A value that cannot become part of a tick raises
:class:`Reject` with a reason code; the pipeline turns that into a stored,
counted reject, so bad input never escapes as an exception.
"""

from __future__ import annotations

from collections import deque
from statistics import median

from rtkit.kinds.trades import BUY as BUY  # the aggressor side codes, re-exported
from rtkit.kinds.trades import SELL as SELL
from rtkit.kinds.trades import SIDE_TEXT as SIDE_TEXT
from rtkit.kinds.trades import UNKNOWN_SIDE as UNKNOWN_SIDE
from rtkit.redact import redact_url
from rtkit.typedefs import REASONS as REASONS  # the rejects.reason codes, re-exported
from rtkit.typedefs import RejectReason

#: Largest price or size accepted; anything above is a broken feed, not a market.
MAX_VALUE = 1e15
#: Largest integer trade id or count accepted (int64, the ring's id column).
MAX_ID = 2**63 - 1
#: Accepted trade times: 2000-01-01 .. 2100-01-01, in ns since the epoch.
MIN_TS_NS = 946_684_800 * 10**9
MAX_TS_NS = 4_102_444_800 * 10**9
#: the same bounds in ms, for the adapters' fast paths
MIN_TS_MS, MAX_TS_MS = MIN_TS_NS // 10**6, MAX_TS_NS // 10**6
#: Longest normalised symbol (``BASE-QUOTE``) accepted; the longest real one is ~20.
MAX_SYMBOL_CHARS = 32
#: Longest text trade id accepted (a Bybit UUID has 36 characters).
MAX_TRADE_ID_CHARS = 64

_UNIT_NS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


class Reject(Exception):  # noqa: N818 - it is a value as much as an error
    """Why a frame, or one trade inside a frame, cannot become a tick."""

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.reason: RejectReason = reason
        self.detail = detail

    def __repr__(self) -> str:
        return f"Reject({self.reason!r}, {self.detail!r})"


def ws_url(url) -> str:
    """A user-given WebSocket URL, or a ValueError saying what it must look like."""
    if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
        raise ValueError(f"url must start with ws:// or wss://, not {redact_url(url)!r}")
    return url


def field(mapping: dict, key: str):
    """``mapping[key]``, or a ``missing_field`` reject naming the key."""
    try:
        return mapping[key]
    except (KeyError, TypeError):
        raise Reject("missing_field", key) from None


def plain_number_text(text: str) -> bool:
    """True when ``float()`` reads ``text`` as a plain ASCII decimal or exponent
    number: ``float`` alone would also take ``"1_000.5"``, ``" 65000 "`` and
    Arabic-Indic or full-width digits, which no venue means as a price."""
    return text.isascii() and "_" not in text and text.strip() == text


def positive(value, name: str) -> float:
    """A finite float in (0, MAX_VALUE] from a decimal string or a JSON number.

    Text must be a plain ASCII number (see :func:`plain_number_text`); it is
    parsed with ``float()``, which rounds the exact decimal text correctly: no
    precision is lost beyond what float64 itself holds.
    """
    if value is None:
        raise Reject("missing_field", name)
    if type(value) is bool or not isinstance(value, (str, int, float)):
        raise Reject("bad_number", f"{name}={value!r:.40}")
    if type(value) is str and not plain_number_text(value):
        raise Reject("bad_number", f"{name}={value!r:.40}")
    try:
        x = float(value)
    except (ValueError, OverflowError):
        raise Reject("bad_number", f"{name}={value!r:.40}") from None
    if x > 0.0:
        if x <= MAX_VALUE:
            return x
        raise Reject("out_of_range", f"{name}={value!r:.40}")
    if x != x:  # NaN
        raise Reject("bad_number", f"{name}={value!r:.40}")
    raise Reject("non_positive", f"{name}={value!r:.40}")


def whole_number(value, name: str) -> int:
    """A non-negative int64 from a JSON int or a string of ASCII digits (ids, counts).

    Bounded to int64 because trade ids live in an int64 column of the ring.
    """
    if type(value) is str and value.isascii() and value.isdigit():
        if len(value) > 19:
            raise Reject("out_of_range", f"{name}={value!r:.40}")
        value = int(value)
    if type(value) is int:
        if 0 <= value <= MAX_ID:
            return value
        raise Reject("out_of_range", f"{name}={value!r:.40}")
    if value is None:
        raise Reject("missing_field", name)
    raise Reject("bad_number", f"{name}={value!r:.40}")


def text_id(value, name: str) -> str:
    """A trade id sent as text: 1 to MAX_TRADE_ID_CHARS printable ASCII characters.

    Anything else (control characters such as ANSI escapes, bidi overrides,
    non-ASCII text, megabytes of it) would be stored and shown to whoever
    reads the ticks: it is a ``bad_number`` reject, or ``out_of_range`` when too long.
    """
    if type(value) is str and 0 < len(value) <= MAX_TRADE_ID_CHARS and value.isascii() \
            and value.isprintable():
        return value
    if value is None:
        raise Reject("missing_field", name)
    if type(value) is str and len(value) > MAX_TRADE_ID_CHARS:
        raise Reject("out_of_range", f"{name} of {len(value):,} characters > {MAX_TRADE_ID_CHARS}")
    raise Reject("bad_number", f"{name}={value!r:.40} (ids are printable ASCII text or ints)")


def side_code(value, buy: str, sell: str) -> int:
    """BUY or SELL for a venue's aggressor-side word, or a ``bad_side`` reject."""
    if value == buy:
        return BUY
    if value == sell:
        return SELL
    raise Reject("bad_side", f"side={value!r:.40}")


def _in_range(ns: int, raw) -> int:
    if MIN_TS_NS <= ns <= MAX_TS_NS:
        return ns
    raise Reject("bad_timestamp", f"{raw!r:.40}")


def epoch_ns(value, unit: str) -> int:
    """Int ns from an epoch number in ``unit`` ('s', 'ms', 'us' or 'ns').

    Accepts ints, floats and digit strings; a string with decimals
    (Kraken v1's ``"1534614057.321597"``) is split, not rounded through float.
    """
    scale = _UNIT_NS[unit]
    if type(value) is int:
        return _in_range(value * scale, value)
    if isinstance(value, str):
        whole, dot, frac = value.partition(".")
        digits_ok = value.isascii() and whole.isdigit() and (not dot or frac.isdigit())
        if digits_ok and len(whole) <= 20:  # int() refuses over 4300 digits
            ns = int(whole) * scale
            if frac:
                digits = len(str(scale)) - 1
                ns += int(frac[:digits].ljust(digits, "0")) if digits else 0
            return _in_range(ns, value)
        raise Reject("bad_timestamp", f"{value!r:.40}")
    if type(value) is float:
        scaled = value * scale  # may overflow to inf: compare as a float before rounding
        if MIN_TS_NS <= scaled <= MAX_TS_NS:  # False for NaN and ±inf too
            return round(scaled)
        raise Reject("bad_timestamp", f"{value!r:.40}")
    if value is None:
        raise Reject("missing_field", "timestamp")
    raise Reject("bad_timestamp", f"{value!r:.40}")


def _days_in_month(year: int, month: int) -> int:
    """28..31: how long ``month`` is in ``year`` (proleptic Gregorian)."""
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


#: longest ISO time read: 19 + a dot and up to 14 fraction digits + a ``+HH:MM`` offset
_MAX_ISO_CHARS = 40

#: the last UTC minute ``iso_ns`` read in full, as ("YYYY-MM-DDTHH:MM", epoch seconds);
#: consecutive trades share it, so most times only need their seconds read.
#: Replaced as one tuple, so threads sharing it never see half an update.
_last_minute: list[tuple[str, int]] = [("", 0)]


def iso_ns(text) -> int:
    """Int ns from an ISO-8601/RFC 3339 time such as ``2023-09-25T07:49:37.708706Z``.

    Up to 9 fractional digits are kept exactly (Coinbase sends nanoseconds);
    a ``+HH:MM`` offset is applied; a time without a zone is taken as UTC.
    """
    prefix, minute_s = _last_minute[0]
    if type(text) is str and text[:16] == prefix and text[-1:] == "Z" and text[19:20] == ".":
        sec, frac = text[17:19], text[20:-1]
        if (text[16] == ":" and sec.isascii() and sec.isdigit() and int(sec) < 61
                and 0 < len(frac) <= 9 and frac.isascii() and frac.isdigit()):
            return (minute_s + int(sec)) * 10**9 + int(frac.ljust(9, "0"))
    if not isinstance(text, str):
        if text is None:
            raise Reject("missing_field", "timestamp")
        raise Reject("bad_timestamp", f"{text!r:.40}")
    try:
        if not 19 <= len(text) <= _MAX_ISO_CHARS or text[4] != "-" or text[7] != "-" \
                or text[10] not in "Tt ":
            raise ValueError
        if text[13] != ":" or text[16] != ":" or not text.isascii():
            raise ValueError
        fields = (text[0:4], text[5:7], text[8:10], text[11:13], text[14:16], text[17:19])
        if not "".join(fields).isdigit():  # int() would also take "+1", " 1" and "0_1"
            raise ValueError
        y, mo, d, h, mi, s = map(int, fields)
        if not (1 <= mo <= 12 and 1 <= d <= _days_in_month(y, mo) and h < 24 and mi < 60
                and s < 61):
            raise ValueError
        rest = text[19:]
        frac_ns = 0
        if rest[:1] == ".":
            end = 1
            while end < len(rest) and rest[end].isdigit():
                end += 1
            digits = rest[1:end]
            if not digits:
                raise ValueError
            frac_ns = int(digits[:9].ljust(9, "0"))
            rest = rest[end:]
        offset_s = 0
        if rest in ("Z", "z", ""):
            pass
        elif (len(rest) == 6 and rest[0] in "+-" and rest[3] == ":"
              and (rest[1:3] + rest[4:6]).isdigit() and rest[1:3] < "24" and rest[4:6] < "60"):
            offset_s = (int(rest[1:3]) * 3600 + int(rest[4:6]) * 60) * (1 if rest[0] == "+" else -1)
        else:
            raise ValueError
    except ValueError:
        raise Reject("bad_timestamp", f"{text!r:.40}") from None
    minute_s = _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 - offset_s
    ns = _in_range((minute_s + s) * 10**9 + frac_ns, text)
    if not offset_s and text[:16].isascii():
        _last_minute[0] = (text[:16], minute_s)
    return ns


#: What :func:`trade_time_ns` accepts as ``unit``.
TIME_UNITS = ("s", "ms", "us", "ns", "iso", "auto")


def trade_time_ns(value, unit: str) -> int:
    """Int ns from a trade time in ``unit`` (one of TIME_UNITS).

    ``'iso'`` reads ISO-8601 text; ``'auto'`` reads ISO text or an epoch number
    whose unit it tells by size. That guess is safe because only 2000..2100 is
    accepted, where seconds are ~1e9, ms ~1e12, µs ~1e15 and ns ~1e18.
    """
    if unit == "iso":
        return iso_ns(value)
    if unit != "auto":
        return epoch_ns(value, unit)
    if isinstance(value, str) and not (value.isascii() and value.replace(".", "", 1).isdigit()):
        return iso_ns(value)
    try:
        size = float(value)
    except (TypeError, ValueError, OverflowError):
        size = 0.0  # not a number: epoch_ns says what is wrong with it
    unit = "s" if size < 1e11 else "ms" if size < 1e14 else "us" if size < 1e17 else "ns"
    return epoch_ns(value, unit)


class AnomalyFilter:
    """Rejects prices far from the recent median of the same symbol.

    ``max_deviation=0.2`` rejects a trade more than 20 % away from the median
    of the last ``window`` accepted prices, once ``min_samples`` have been
    seen. Off unless a collector or replay is given one: a real crash is not a
    bad tick, so the default is to keep everything and let the user decide.
    When ``min_samples`` prices in a row are rejected, the market has moved:
    the median starts again from them instead of rejecting the symbol forever.
    Each collector should have its own filter (it remembers per symbol).
    """

    def __init__(self, max_deviation: float = 0.2, window: int = 51, min_samples: int = 11):
        if not (max_deviation > 0 and window >= 3 and 1 <= min_samples <= window):
            raise ValueError(
                "AnomalyFilter needs max_deviation > 0, window >= 3 and "
                "1 <= min_samples <= window (e.g. AnomalyFilter(0.2, 51, 11))"
            )
        self.max_deviation = max_deviation
        self.window = window
        self.min_samples = min_samples
        self._recent: dict[str, deque] = {}
        self._median: dict[str, float] = {}
        self._outliers: dict[str, list[float]] = {}  # rejected in a row, per symbol

    def check(self, symbol: str, price: float) -> None:
        """Raise ``Reject('anomaly')`` for an outlier; otherwise remember the price."""
        recent = self._recent.get(symbol)
        if recent is None:
            recent = self._recent[symbol] = deque(maxlen=self.window)
        ref = self._median.get(symbol)
        if ref is not None and abs(price / ref - 1.0) > self.max_deviation:
            outliers = self._outliers.setdefault(symbol, [])
            outliers.append(price)
            if len(outliers) < self.min_samples:
                raise Reject("anomaly", f"{symbol} price {price} vs median {ref}")
            recent.clear()  # a level that persists is the market, not an error
            recent.extend(outliers[:-1])  # this price is appended below
            del self._median[symbol]
        self._outliers.pop(symbol, None)
        recent.append(price)
        if len(recent) >= self.min_samples:
            self._median[symbol] = median(recent)
