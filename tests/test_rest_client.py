"""rtkit's HTTP client against the simulator's REST side over real HTTP on 127.0.0.1:
timeouts, connection reuse, 429 with Retry-After, 418, 5xx, and ``rest_url=`` plumbing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import rtkit
from rtkit.rest import Banned, Budget, RestClient, RestTimeout
from rtkit.rest.client import RateLimited, retry_after_s
from rtkit.rest.endpoints import http_base, resolve_rest_url
from rtkit.sim import Market, Simulator
from rtkit.sim.rest import SimRest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def rest():
    market = Market(3)
    market.trades_for(["BTC-USDT"], 100)
    with SimRest(venue="binance-futures", market=market) as server:
        yield server


def test_a_snapshot_comes_back_in_the_venue_shape(rest):
    with RestClient("binance-futures", rest.url) as client:
        book = client.depth("BTC-USDT", 100)
    assert len(book.bids) == len(book.asks) == 100
    assert float(book.bids[0][0]) < float(book.asks[0][0])
    assert book.sequence > 0 and book.time_ns > 0
    assert rest.requests["/fapi/v1/depth"] == 1


def test_one_connection_serves_many_requests(rest):
    with RestClient("binance-futures", rest.url) as client:
        for _ in range(30):
            client.depth("BTC-USDT", 5)
    assert rest.statuses[200] == 30
    assert rest.connections == 1  # a client that reconnected per request would make 30


def test_parallel_snapshots_share_a_few_connections(rest):
    symbols = [f"C{i:02d}-USDT" for i in range(40)]
    with RestClient("binance-futures", rest.url, max_connections=4) as client:
        books = client.depths(symbols, limit=5, workers=4)
    assert all(not isinstance(b, Exception) for b in books.values())
    assert 1 <= rest.connections <= 4


def test_a_slow_answer_times_out_instead_of_hanging(rest):
    delay = 3.0
    rest.inject(200, delay_s=delay)
    with RestClient("binance-futures", rest.url, timeout_s=0.3, max_retries=0) as client:
        started = time.monotonic()
        with pytest.raises(RestTimeout, match="timeout_s"):
            client.depth("BTC-USDT", 5)
        elapsed = time.monotonic() - started
        assert elapsed < delay / 2  # gave up at its own timeout, not at the server's pace
        assert client.depth("BTC-USDT", 5).bids  # the next request is answered


def test_429_pauses_for_retry_after_then_retries(rest):
    rest.inject(429, retry_after_s=1)
    with RestClient("binance-futures", rest.url, budget=Budget.for_venue("binance-futures")) \
            as client:
        book = client.depth("BTC-USDT", 5)
    assert book.bids
    assert client.stats["http_429"] == 1 and client.stats["http_200"] == 1
    assert client.budget.pauses == 1
    (refused_at, _, refused), (answered_at, _, ok) = list(rest.log)
    assert (refused, ok) == (429, 200)
    assert answered_at - refused_at >= 0.95  # Retry-After: 1 was honoured


def test_429_forever_ends_in_rate_limited_not_a_tight_loop(rest):
    rest.inject(429, count=10, retry_after_s=0.1)
    with RestClient("binance-futures", rest.url, max_retries=2,
                    budget=Budget.for_venue("binance-futures")) as client, \
            pytest.raises(RateLimited, match="429"):
        client.depth("BTC-USDT", 5)
    assert rest.statuses[429] == 3  # the first try and two retries, each after a pause


def test_418_stops_every_request_and_says_why(rest):
    rest.inject(418, retry_after_s=60)
    own = Budget.for_venue("binance-futures")  # a ban must not outlive the test (shared budgets)
    with RestClient("binance-futures", rest.url, budget=own) as client:
        with pytest.raises(Banned, match="418.*banned") as first:
            client.depth("BTC-USDT", 5)
        assert "60 s" in str(first.value)
        asked = sum(rest.requests.values())
        with pytest.raises(Banned):
            client.depth("BTC-USDT", 5)  # refused here: the venue is not asked again
        assert sum(rest.requests.values()) == asked
        assert client.budget.banned and client.budget.snapshot()["banned"]


def test_5xx_is_retried_with_a_pause(rest):
    rest.inject(503, count=2)
    with RestClient("binance-futures", rest.url) as client:
        assert client.depth("BTC-USDT", 5).bids
    assert client.stats["http_503"] == 2 and client.stats["retries"] == 2


def test_a_4xx_is_an_error_at_once(rest):
    with RestClient("binance-futures", rest.url) as client:
        with pytest.raises(ValueError, match="1 to 1000"):
            client.depth("BTC-USDT", 5000)  # more than /fapi/v1/depth gives: refused here
        from rtkit.rest import RestError

        with pytest.raises(RestError, match="HTTP 400") as error:
            client.get(client.spec.depth("BTC-USDT", 5)._replace(params={"limit": 7}))
        assert error.value.status == 400


def test_retry_after_reads_seconds_and_dates():
    assert retry_after_s("3") == 3.0
    assert retry_after_s(None) is None
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


def test_rest_url_must_be_a_base_url():
    assert http_base("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    for bad in ("ws://127.0.0.1:1", "http://h:1/api/v3", "127.0.0.1:80", None):
        with pytest.raises(ValueError, match="rest_url"):
            http_base(bad)


def test_rest_url_is_derived_from_url():
    assert resolve_rest_url("binance", None, None) == "https://api.binance.com"
    assert resolve_rest_url("binance", None, "wss://stream.binance.com:9443/ws") == \
        "https://api.binance.com"
    assert resolve_rest_url("binance", None, "ws://127.0.0.1:9/ws") == "http://127.0.0.1:9"
    assert resolve_rest_url("okx", None, "wss://proxy.example:8443/ws") == \
        "https://proxy.example:8443"
    assert resolve_rest_url("binance", "http://127.0.0.1:7", "ws://127.0.0.1:9/ws") == \
        "http://127.0.0.1:7"
    assert resolve_rest_url("generic", None, None) is None


def test_collector_finds_its_simulators_rest_side(db, no_thread_leak):
    with Simulator("binance", rate=10) as sim, SimRest(sim) as rest:
        c = rtkit.Collector("binance", ["BTC-USDT"], url=sim.url, db=db)
        assert c.rest_url == rest.url
        assert c.config.rest_url is None
        given = rtkit.Collector("binance", ["BTC-USDT"], url=sim.url, db=db,
                                rest_url="http://127.0.0.1:1")
        assert given.rest_url == "http://127.0.0.1:1"
    with pytest.raises(ValueError, match="rest_url= must be a base URL"):
        rtkit.Collector("binance", ["BTC-USDT"], db=db, rest_url="https://x/api")


def test_cli_takes_rest_url(tmp_path, capsys):
    from rtkit.cli import main

    code = main(["collect", "binance", "BTC-USDT", "--db", str(tmp_path / "x.sqlite"),
                 "--rest-url", "ftp://nowhere", "--duration", "0.1"])
    assert code == 2
    assert "--rest-url must be a base URL" in capsys.readouterr().err


def test_import_rtkit_loads_no_http_client():
    code = ("import sys, rtkit; import rtkit.runtime.config; "
            "print('httpx' in sys.modules, callable(rtkit.markets))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.split() == ["False", "True"], done.stderr


def test_budget_a_request_that_can_never_fit_is_refused():
    with pytest.raises(ValueError, match="smaller depth"):
        Budget("binance", 100, 60).acquire(60)


def test_rtkit_sim_serves_rest_and_prints_where(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "rtkit", "sim", "binance", "--duration", "30"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert " on ws://127.0.0.1:" in proc.stdout.readline()
        line = proc.stdout.readline()
        rest_url = line.split()[3]
        assert line.startswith("REST API on http://127.0.0.1:") and "--rest-url" in line
        with RestClient("binance", rest_url) as client:
            assert client.depth("BTC-USDT", 5).bids
    finally:
        proc.kill()
        proc.wait(10)


def test_a_websocket_port_taken_for_rest_says_what_to_pass():
    from rtkit.rest import RestError

    with Simulator("binance", rate=10) as sim:  # no REST side: url's own port is derived
        base = resolve_rest_url("binance", None, sim.url)
        with RestClient("binance", base, max_retries=0) as client, \
                pytest.raises(RestError, match="426.*pass rest_url="):
            client.depth("BTC-USDT", 5)


def test_the_rest_side_of_an_unstarted_simulator_says_what_to_do():
    with pytest.raises(RuntimeError, match="start the Simulator before"):
        SimRest(Simulator("binance")).start()
