"""Trade history by id range from each venue's REST pagination, against the simulator's
trade tape over real HTTP: exactly the ids asked for, each once, with the simulator's
values; the venues that cannot fill say so. And the market lists: ``rtkit.markets``,
``check_symbols``, OKX's ``ctVal``."""

from __future__ import annotations

import time

import pytest

import rtkit
from rtkit.rest import Budget, CannotFill, RestClient, fetch_trades
from rtkit.rest.endpoints import venue_rest
from rtkit.sim import Market
from rtkit.sim.rest import SimRest

SYMBOLS = {"binance": "BTC-USDT", "binance-futures": "BTC-USDT", "coinbase-exchange": "BTC-USD",
           "coinbase": "BTC-USD", "kraken": "BTC-USD", "okx": "BTC-USDT", "bitstamp": "BTC-USD",
           "bybit": "BTC-USDT"}
FIRST, LAST = 1234, 3456


def market_with_trades(symbol: str, n: int = 4000) -> Market:
    """Trades 10 ms apart, alternating with another symbol (so ids are per symbol)."""
    market = Market(11)
    start = time.time_ns() - 2 * n * 10_000_000
    for i in range(2 * n):
        market.trade(symbol if i % 2 == 0 else "ETH-" + symbol.split("-")[1],
                     start + i * 10_000_000)
    return market


def fast_budget(venue: str) -> Budget:
    """The venue's budget with its window compressed 100× (the pages, not the waits, are
    what is tested here)."""
    return Budget.for_venue(venue, window_s=venue_rest(venue).window_s / 100)


@pytest.mark.parametrize("venue", ["binance", "binance-futures", "coinbase-exchange",
                                   "coinbase", "kraken", "okx", "bitstamp"])
def test_trade_history_returns_exactly_the_ids_asked(venue):
    symbol = SYMBOLS[venue]
    market = market_with_trades(symbol)
    made = {t.trade_id: t for t in market.trades if t.symbol == symbol}
    with SimRest(venue=venue, market=market) as rest, \
            RestClient(venue, rest.url, budget=fast_budget(venue)) as client:
        got = fetch_trades(client, symbol, FIRST, LAST, since_ns=made[FIRST - 1].ts_ns,
                           until_ns=made[LAST + 1].ts_ns)
        pages = client.stats["requests"]
    assert [t.trade_id for t in got] == list(range(FIRST, LAST + 1))
    tick = 10**9 if venue == "bitstamp" else 1  # Bitstamp's transactions: whole seconds
    for t in got:
        sim = made[t.trade_id]
        assert (t.price, t.size, t.side, t.ts_ns // tick) == \
            (sim.price, sim.volume, sim.side, sim.ts_ns // tick)
    size = venue_rest(venue).page_size
    assert pages <= (LAST - FIRST + 1) // min(size, LAST - FIRST + 1) + 2  # no page asked twice


def test_binance_spot_aggregate_trades_page_by_from_id_too():
    market = market_with_trades("BTC-USDT", 1500)
    with SimRest(venue="binance", market=market) as rest, RestClient("binance", rest.url) as c:
        page, _ = c.trades_page("BTC-USDT", from_id=100, limit=50, agg=True)
    assert [t.trade_id for t in page] == list(range(100, 150))
    assert rest.requests["/api/v3/aggTrades"] == 1


def test_the_tape_is_bounded_so_old_ids_are_gone():
    market = market_with_trades("BTC-USDT", 3000)
    with SimRest(venue="okx", market=market, tape_size=1000) as rest, \
            RestClient("okx", rest.url, budget=fast_budget("okx")) as client:
        got = fetch_trades(client, "BTC-USDT", 1, 3000)
    assert [t.trade_id for t in got] == list(range(2001, 3001))
    assert len(rest.tape.trades["BTC-USDT"]) == 1000


def test_max_trades_caps_a_fill():
    market = market_with_trades("BTC-USD", 3000)
    with SimRest(venue="coinbase-exchange", market=market) as rest, \
            RestClient("coinbase-exchange", rest.url) as client:
        got = fetch_trades(client, "BTC-USD", 1, 3000, max_trades=1500)
    assert [t.trade_id for t in got] == list(range(1, 1501))


def test_bybit_cannot_fill_and_says_why():
    with SimRest(venue="bybit", market=market_with_trades("BTC-USDT", 100)) as rest, \
            RestClient("bybit", rest.url) as client:
        with pytest.raises(CannotFill, match="not sequential"):
            fetch_trades(client, "BTC-USDT", 10, 20)
        page, _ = client.trades_page("BTC-USDT")
    assert len(page) == 60  # only the latest


def test_okx_swap_instruments_carry_ct_val():
    with SimRest(venue="okx", market=Market(1), symbols=["BTC-USD"]) as rest, \
            RestClient("okx", rest.url) as client:
        swaps = {i.native: i for i in client.instruments("SWAP")}
        spot = client.instruments()
    linear, inverse = swaps["BTC-USDT-SWAP"], swaps["BTC-USD-SWAP"]
    assert (linear.kind, linear.ct_val, linear.ct_val_ccy, linear.ct_type) == \
        ("swap", 0.01, "BTC", "linear")
    assert (inverse.ct_val, inverse.ct_val_ccy, inverse.ct_type) == (100.0, "USD", "inverse")
    assert linear.symbol == "BTC-USDT"
    assert {i.symbol for i in spot} >= {"BTC-USDT", "ETH-USDT"} and spot[0].ct_val is None
    assert rest.requests["/api/v5/public/instruments"] == 2


@pytest.mark.parametrize("venue", ["binance", "binance-futures", "coinbase-exchange", "coinbase",
                                   "kraken", "okx", "bybit", "bitstamp"])
def test_markets_lists_the_venue_as_base_quote(venue):
    with SimRest(venue=venue, market=Market(1), symbols=["SOL-USDC"]) as rest:
        listed = rtkit.markets(venue, rest.url, refresh=True)
    assert {"BTC-USDT", "ETH-USDT", "SOL-USDC"} <= set(listed)
    assert listed == sorted(listed)


def test_check_symbols_refuses_an_unknown_symbol_before_connecting():
    with SimRest(venue="binance", market=Market(1)) as rest:
        assert rtkit.check_symbols("binance", ["btcusdt", "ETH-USDT"], rest.url) == \
            ["BTC-USDT", "ETH-USDT"]
        with pytest.raises(ValueError, match=r"'BTC-USDX' \(did you mean BTC-USDT") as error:
            rtkit.check_symbols("binance", ["BTC-USDX"], rest.url)
        assert "rtkit.markets('binance')" in str(error.value)
        asked = rest.requests["/api/v3/exchangeInfo"]
    assert asked == 1  # the list is cached


#: where each venue's snapshot carries the provider's sequence (the others: 0 or a time)
SEQUENCE_CARRIED = {"binance", "binance-futures", "coinbase-exchange", "bybit"}


@pytest.mark.parametrize("venue", ["binance", "binance-futures", "coinbase-exchange", "coinbase",
                                   "kraken", "okx", "bybit", "bitstamp"])
def test_snapshots_come_from_the_registered_provider_in_each_venue_shape(venue):
    asked = []
    bids = [("100.5", "1.25"), ("100.4", "0.5"), ("100.1", "3")]
    asks = [("100.6", "0.75"), ("100.9", "2")]
    at = 1_700_000_000_123_000_000

    def provider(v, symbol, limit):
        asked.append((v, symbol, limit))
        return bids[:limit], asks[:limit], 4242, at

    symbol = SYMBOLS[venue]
    with SimRest(venue=venue, market=Market(1), depth_provider=provider) as rest, \
            RestClient(venue, rest.url) as client:
        book = client.depth(symbol, 5 if venue != "bitstamp" else None)
    assert asked and asked[0][:2] == (venue, symbol)
    assert (book.bids, book.asks) == (bids, asks)
    if venue in SEQUENCE_CARRIED:
        assert book.sequence == 4242
    if venue == "bitstamp":
        assert book.sequence == at // 1000  # its microtimestamp: what orders its diffs
    if venue == "binance":
        assert book.time_ns == 0  # spot's /api/v3/depth gives no time
    else:
        assert abs(book.time_ns - at) < 10**9  # at the venue's resolution


def test_kraken_goes_on_from_its_own_cursor_and_reads_no_page_twice():
    from rtkit.rest.history import since_pages

    market = market_with_trades("BTC-USD", 4000)
    made = {t.trade_id: t for t in market.trades if t.symbol == "BTC-USD"}
    with SimRest(venue="kraken", market=market, window_s=0.02) as rest, \
            RestClient("kraken", rest.url, budget=fast_budget("kraken")) as client:
        first, cursor = since_pages(client, "BTC-USD", 1, 3500, 0, pages=2)
        rest_of, end = since_pages(client, "BTC-USD", first[-1].trade_id + 1, 3500, cursor)
        pages = client.stats["requests"]
    assert cursor is not None and end is None
    assert [t.trade_id for t in first] == list(range(1, 2001))
    assert [t.trade_id for t in first + rest_of] == list(range(1, 3501))
    assert all(t.price == made[t.trade_id].price for t in rest_of)
    # 1,000 a page: 3,500 ids in 4 pages, none asked twice
    assert pages == 4 and rest.statuses[429] == 0
