"""Derivative contracts: what one contract is worth, so that sizes in contracts
become base units (the ``volume`` every tick promises) and nothing is lost.

OKX ``SWAP`` and ``FUTURES`` trade sizes are numbers of contracts. A *linear*
contract (``BTC-USDT-SWAP``) is worth ``ct_val`` of the base currency
(0.01 BTC): ``volume = contracts × ct_val``. An *inverse* contract
(``BTC-USD-SWAP``, ``BTC-USD-220527``) is worth ``ct_val`` of the quote
currency (100 USD): ``volume = contracts × ct_val / price``. Bybit ``inverse``
sizes are USD, one contract being 1 USD: the inverse rule with ``ct_val`` 1.

Why a table and not a column: the ring, the ``ticks`` table and the lake keep
their one ``volume`` column in base units (so spot is untouched and every
reader of ``ticks`` sees one unit); the facts behind a conversion are a few
rows per run in the ``instruments`` table (:func:`save_contracts`), from which
``contracts = volume / ct_val`` (linear) or ``volume × price / ct_val``
(inverse) always recovers the venue's size. A recording keeps them too (an
``instruments`` event), so a replay converts alike.

The facts come from the venue at start (:func:`fetch_contracts`, OKX's public
instruments list) or from ``contract_values={...}`` (offline, replay).
"""

from __future__ import annotations

import difflib
import math
import re
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from rtkit.validate import MAX_VALUE

#: an OKX derivative's id: ``BTC-USDT-SWAP`` (perpetual) or ``BTC-USD-220527`` (expiry date)
_OKX_CONTRACT = re.compile(r"([A-Z0-9]{1,12})-([A-Z0-9]{1,12})-(SWAP|[0-9]{6})")
#: seconds one request for a venue's contract values may take (it is tried twice)
FETCH_TIMEOUT_S = 10.0
#: seconds a write of the instruments table waits for a database another thread writes
_DB_BUSY_TIMEOUT_S = 10.0
#: contract facts one recording line may carry (a recording is untrusted input)
MAX_RECORDED_CONTRACTS = 10_000
CT_TYPES = ("linear", "inverse")

INSTRUMENTS_DDL = """CREATE TABLE IF NOT EXISTS instruments (
    venue TEXT NOT NULL, symbol TEXT NOT NULL, kind TEXT NOT NULL, ct_val REAL NOT NULL,
    ct_val_ccy TEXT NOT NULL, ct_type TEXT NOT NULL, fetched_at INTEGER NOT NULL,
    PRIMARY KEY (venue, symbol, ct_val, ct_val_ccy, ct_type))"""


class ContractError(ValueError):
    """A contract's value is unknown or unusable: its sizes cannot be converted."""


def okx_contract_id(symbol) -> str | None:
    """``btc-usdt-swap`` → ``BTC-USDT-SWAP`` (an OKX SWAP or FUTURES id), else None."""
    if not isinstance(symbol, str):
        return None
    s = symbol.strip().upper()
    return s if _OKX_CONTRACT.fullmatch(s) else None


def okx_inst_type(symbol: str) -> str:
    """The OKX ``instType`` whose list holds ``symbol``: ``SWAP`` or ``FUTURES``."""
    return "SWAP" if symbol.endswith("-SWAP") else "FUTURES"


@dataclass(frozen=True, slots=True)
class Contract:
    """One contract's facts: what a size of 1 is worth (``ct_val`` of ``ct_val_ccy``)."""

    venue: str
    symbol: str  # as stored in ticks: BTC-USDT-SWAP, BTC-USD-220527, BTC-USD (Bybit inverse)
    kind: str  # 'swap', 'futures' (OKX), 'inverse' (Bybit)
    ct_val: float
    ct_val_ccy: str
    ct_type: str  # 'linear' (ct_val in the base) or 'inverse' (ct_val in the quote)

    def __post_init__(self) -> None:
        if type(self.ct_val) is int:
            object.__setattr__(self, "ct_val", float(self.ct_val))
        if not (isinstance(self.ct_val, float) and math.isfinite(self.ct_val)
                and 0.0 < self.ct_val <= MAX_VALUE):
            raise ContractError(f"{self.venue} {self.symbol}: a contract value must be a number "
                                f"above 0, not {self.ct_val!r}")
        if self.ct_type not in CT_TYPES:
            raise ContractError(f"{self.venue} {self.symbol}: ct_type must be 'linear' or "
                                f"'inverse', not {self.ct_type!r}")
        base, _, rest = self.symbol.partition("-")
        quote = rest.partition("-")[0]
        wanted = base if self.ct_type == "linear" else quote
        if self.ct_val_ccy != wanted:
            # a value in another currency would need a second price to convert: refuse
            raise ContractError(
                f"{self.venue} {self.symbol}: a {self.ct_type} contract's value must be in "
                f"{wanted} (the {'base' if self.ct_type == 'linear' else 'quote'}), not "
                f"{self.ct_val_ccy!r}")

    def base_volume(self, contracts: float, price: float) -> float:
        """A size in contracts → base units: ``contracts × ct_val`` (linear) or
        ``contracts × ct_val / price`` (inverse)."""
        if self.ct_type == "linear":
            return contracts * self.ct_val
        return contracts * self.ct_val / price

    def contracts(self, volume: float, price: float) -> float:
        """The venue's size back from a stored ``volume`` (and the trade's price)."""
        if self.ct_type == "linear":
            return volume / self.ct_val
        return volume * price / self.ct_val

    def record(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, obj) -> Contract:
        """A contract from :meth:`record`'s dict (a recording line: checked)."""
        if type(obj) is not dict:
            raise ContractError(f"a contract record must be an object, not {str(obj)[:60]}")
        try:
            texts = [obj[k] for k in ("venue", "symbol", "kind", "ct_val_ccy", "ct_type")]
            ct_val = obj["ct_val"]
        except KeyError as exc:
            raise ContractError(f"a contract record lacks {exc}") from None
        if not all(type(t) is str and 0 < len(t) <= 32 for t in texts) \
                or type(ct_val) not in (int, float):
            raise ContractError(f"a contract record of the wrong shape: {str(obj)[:200]}")
        venue, symbol, kind, ccy, ct_type = texts
        return cls(venue, symbol, kind, float(ct_val), ccy, ct_type)


def bybit_inverse(symbol: str) -> Contract:
    """Bybit's inverse contract of ``BASE-USD``: one contract is 1 USD."""
    return Contract("bybit", symbol, "inverse", 1.0, symbol.partition("-")[2], "inverse")


def okx_contract(symbol: str, ct_val, ct_val_ccy: str | None = None,
                 ct_type: str | None = None) -> Contract:
    """An OKX contract from its value; without ``ct_type``, OKX's rule: a ``USD`` quote
    is inverse (value in USD), any other (USDT, USDC) linear (value in the base)."""
    contract_id = okx_contract_id(symbol)
    if contract_id is None:
        raise ContractError(f"{symbol!r} is no OKX SWAP/FUTURES id (e.g. 'BTC-USDT-SWAP', "
                            "'BTC-USD-220527')")
    base, quote, suffix = contract_id.split("-")
    ct_type = ct_type or ("inverse" if quote == "USD" else "linear")
    ccy = ct_val_ccy or (quote if ct_type == "inverse" else base)
    try:
        value = float(ct_val)
    except (TypeError, ValueError):
        raise ContractError(f"okx {contract_id}: contract value {ct_val!r} is not a number") \
            from None
    return Contract("okx", contract_id, "swap" if suffix == "SWAP" else "futures", value, ccy,
                    ct_type)


def contracts_from_option(venue: str, values: Mapping) -> dict[str, Contract]:
    """``contract_values={"BTC-USDT-SWAP": 0.01, "BTC-USD-SWAP": {"ct_val": 100,
    "ct_type": "inverse"}}`` → contracts by symbol; a ContractError says what is wrong."""
    if not isinstance(values, Mapping):
        raise ContractError("contract_values= maps a contract to its value, e.g. "
                            "{'BTC-USDT-SWAP': 0.01, 'BTC-USD-SWAP': 100}")
    out: dict[str, Contract] = {}
    for symbol, value in values.items():
        if isinstance(value, Contract):
            contract = value
        elif venue != "okx":
            raise ContractError(f"{venue} takes no contract_values= (its contract sizes are "
                                "fixed)")
        elif isinstance(value, Mapping):
            contract = okx_contract(symbol, value.get("ct_val"), value.get("ct_val_ccy"),
                                    value.get("ct_type"))
        else:
            contract = okx_contract(symbol, value)
        out[contract.symbol] = contract
    return out


# --- the venue's facts --------------------------------------------------------------------
def fetch_contracts(venue: str, symbols: list[str], rest_url: str | None,
                    timeout_s: float = FETCH_TIMEOUT_S) -> list[Contract]:
    """The contracts of ``symbols`` from the venue (OKX: ``/api/v5/public/instruments``
    per ``instType``, each request bounded by ``timeout_s`` and tried twice); a symbol the
    list lacks is a ContractError naming the closest ones. Any RestError passes on."""
    if not symbols:
        return []
    if venue == "bybit":
        return [bybit_inverse(s) for s in symbols]
    if venue != "okx":
        raise ContractError(f"{venue} has no contract values to fetch")
    from rtkit.rest import RestClient  # httpx loads only when a contract needs it

    out = []
    with RestClient("okx", rest_url, timeout_s=timeout_s, max_retries=1) as client:
        for inst_type in sorted({okx_inst_type(s) for s in symbols}):
            listed = {i.native: i for i in client.instruments(inst_type=inst_type)}
            for symbol in (s for s in symbols if okx_inst_type(s) == inst_type):
                found = listed.get(symbol)
                if found is None or found.ct_val is None:
                    close = difflib.get_close_matches(symbol, list(listed), n=3)
                    hint = f" (did you mean {', '.join(close)}?)" if close else ""
                    raise ContractError(
                        f"okx lists no {inst_type} instrument {symbol!r}{hint}: its contract "
                        "value is unknown, so its sizes cannot be converted; check the name")
                out.append(okx_contract(symbol, found.ct_val, found.ct_val_ccy,
                                        found.ct_type))
    return out


# --- kept with the data --------------------------------------------------------------------
def save_contracts(db: str | Path, contracts: Iterable[Contract],
                   fetched_at_ns: int | None = None) -> None:
    """Add the contracts to ``db``'s ``instruments`` table; facts already there keep the
    time they were first used (a changed value gets a row of its own)."""
    rows = [(c.venue, c.symbol, c.kind, c.ct_val, c.ct_val_ccy, c.ct_type,
             fetched_at_ns or time.time_ns()) for c in contracts]
    if not rows:
        return
    con = sqlite3.connect(db, timeout=_DB_BUSY_TIMEOUT_S)
    try:
        with con:
            con.execute(INSTRUMENTS_DDL)
            con.executemany("INSERT OR IGNORE INTO instruments VALUES (?,?,?,?,?,?,?)", rows)
    finally:
        con.close()


def contracts_needed(adapter, symbols: list[str]) -> list[str]:
    """The subscribed ``symbols`` that are contracts (the adapter says: ``contract_symbols``)."""
    pick = getattr(adapter, "contract_symbols", None)
    return pick(symbols) if pick is not None else []


class ContractSetup:
    """What a collector does before its first connection, on its receive thread: learn
    the contract values of its contract symbols (given, else fetched), teach the
    adapter, keep them in the database and the recording. ``__call__`` returns why
    the collector cannot start, or ""."""

    def __init__(self, adapter, symbols: list[str], rest_url: str | None, db: Path,
                 timeout_s: float = FETCH_TIMEOUT_S) -> None:
        self.adapter, self.rest_url, self.db, self.timeout_s = adapter, rest_url, db, timeout_s
        self.symbols = contracts_needed(adapter, symbols)
        #: the facts in use once started (symbol → Contract)
        self.contracts: dict[str, Contract] = {}

    def __bool__(self) -> bool:
        return bool(self.symbols)

    def __call__(self, recorder=None) -> str:
        from rtkit.rest import RestError

        adapter, venue = self.adapter, self.adapter.name
        known = adapter.contracts
        missing = [s for s in self.symbols if s not in known]
        try:
            fetched = fetch_contracts(venue, missing, self.rest_url, self.timeout_s)
        except (ContractError, RestError) as exc:
            return (f"cannot start: the contract values of {', '.join(missing)} are needed to "
                    f"convert their sizes to base units, and fetching them failed: {exc}. "
                    "Pass them as contract_values={...} to collect without the venue's list")
        adapter.set_contracts(fetched)
        self.contracts = {s: adapter.contracts[s] for s in self.symbols}
        now = time.time_ns()
        try:
            save_contracts(self.db, self.contracts.values(), now)
        except sqlite3.Error as exc:
            return f"cannot keep the contract values in {self.db} (instruments table): {exc}"
        if recorder is not None:
            recorder.instruments(now, venue, [c.record() for c in self.contracts.values()])
        return ""
