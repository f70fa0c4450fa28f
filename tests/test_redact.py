"""Keys in an endpoint URL never reach runs.url, .status, repr, stats, the CLI or the log."""

import contextlib
import json
import logging
import socket
import sqlite3
import threading

import pytest

import rtkit
from rtkit.cli import main
from rtkit.onchain import ChainCollector, Pool
from rtkit.pipeline import quote
from rtkit.redact import Redactor, redact_url
from rtkit.sim import Faults, Simulator
from rtkit.venues import get_adapter, venue_names
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")

PASSWORD = "hunter2pw"
SECRET = "SECRET"
TOKEN = "0123456789abcdef0123456789abcdef"  # an Infura project id: 32 hex digits
LEAKS = (PASSWORD, SECRET, TOKEN, TOKEN[:16])


def secret_url(port: int, scheme: str = "ws") -> str:
    return f"{scheme}://alice:{PASSWORD}@127.0.0.1:{port}/v3/{TOKEN}?apikey={SECRET}&depth=5"


def assert_no_leak(*texts) -> None:
    for text in texts:
        for leak in LEAKS:
            assert leak not in str(text), f"{leak!r} shown in {text!r}"


@pytest.fixture
def rtkit_log(caplog):
    caplog.set_level(logging.DEBUG, logger="rtkit")
    return caplog


class EchoingServer:
    """A loopback HTTP server that refuses the WebSocket upgrade the way a careless proxy
    does: a 400 whose Location header is the full URL and whose body echoes the request
    line, so websocket-client's exception text carries every key. ``hang=True``: it
    accepts and says nothing (the collector stays ``connecting``)."""

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        self._done = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True, name="echoing-server")
        self._thread.start()

    def _serve(self) -> None:
        while not self._done.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted.set()
            if self.hang:
                self._held.append(conn)
                continue
            with conn:
                conn.settimeout(2)
                request = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in request:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        request += chunk
                line = request.split(b"\r\n", 1)[0]
                location = secret_url(self.port).encode()
                body = b"bad request: " + line
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nLocation: " + location +
                                 b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self.sock.close()


def test_redact_url_hides_user_info_query_values_and_path_tokens():
    assert redact_url(secret_url(8546)) == "ws://***@127.0.0.1:8546/v3/***?apikey=***&depth=***"
    assert (redact_url("wss://eth-mainnet.g.alchemy.com/v2/Ht3vXq9ZpLmN2bC7dK4wR8sT1yU6aE0f")
            == "wss://eth-mainnet.g.alchemy.com/v2/***")
    assert redact_url("wss://mainnet.infura.io/ws/v3/" + TOKEN) == (
        "wss://mainnet.infura.io/ws/v3/***")
    assert redact_url("wss://token@host/feed#frag") == "wss://***@host/feed#***"
    assert redact_url("ws://[::1") == "ws://***"  # unparseable: nothing after the scheme
    assert redact_url(redact_url(secret_url(1))) == redact_url(secret_url(1))


@pytest.mark.parametrize("venue", [v for v in venue_names() if v != "generic"])
def test_public_endpoints_are_shown_as_they_are(venue):
    adapter = get_adapter(venue)
    url = adapter.url(None, [adapter.normalise_symbol("BTC-USDT")])
    assert redact_url(url) == url


def test_redactor_cleans_echoes_and_text_cut_inside_a_key():
    url = secret_url(9)
    r = Redactor(url)
    echoed = f"GET /v3/{TOKEN}?apikey={SECRET}&depth=5 HTTP/1.1; Location: {url}"
    assert_no_leak(r(echoed))
    assert r("a bad depth of json, alice") == "a bad depth of json, alice"  # words stay
    cut = quote(f"refused /v3/{TOKEN}", 30)  # quote() cuts inside the token
    assert cut.endswith("…") and TOKEN[:8] in cut
    assert TOKEN[:8] not in r(cut) and r(cut).endswith("***…")


def test_secrets_never_reach_runs_status_repr_stats_or_log(db, rtkit_log):
    """The collector works through a URL carrying a password, an api key and a path
    token (the simulator ignores them), and shows none of them anywhere."""
    shown = []
    with Simulator("binance", rate=2000, count=1200, seed=3,
                   faults=Faults(drop_every=300)) as sim:
        c = rtkit.collect("binance", ["BTC-USDT"], url=secret_url(sim.port), db=db,
                          flush_interval_s=0.1, backoff_initial_s=0.05)

        def settled():
            shown.extend([repr(c), c.status.reason, json.dumps(c.stats), c.last_error])
            return c.stats["stored"] >= 1200 and c.reconnects >= 1

        wait_for(settled)
        c.stop()
    assert c.url == secret_url(sim.port)  # what the socket connected to, as given
    assert c.redacted_url == redact_url(c.url)
    runs = sqlite3.connect(db).execute("SELECT url FROM runs").fetchall()
    assert runs == [(f"ws://***@127.0.0.1:{sim.port}/v3/***?apikey=***&depth=***",)]
    assert "connection lost" in rtkit_log.text  # the log was captured
    assert_no_leak(*shown, repr(c), c.status.reason, json.dumps(c.stats), rtkit_log.text)


def test_connecting_reason_shows_the_url_without_its_keys(db):
    server = EchoingServer(hang=True)
    try:
        c = rtkit.collect("binance", ["BTC-USDT"], url=secret_url(server.port), db=db,
                          connect_timeout_s=2)
        assert server.accepted.wait(5)
        assert c.status == "connecting"
        assert c.status.reason == redact_url(secret_url(server.port))
        assert_no_leak(repr(c), json.dumps(c.stats))
        c.stop()
    finally:
        server.close()


def test_websocket_client_errors_that_echo_the_url_are_redacted(db, rtkit_log, capsys):
    server = EchoingServer()
    try:
        c = rtkit.collect("binance", ["BTC-USDT"], url=secret_url(server.port), db=db,
                          backoff_initial_s=5)
        wait_for(lambda: c.status == "backoff")
        reason, stats = c.status.reason, json.dumps(c.stats)
        c.stop()
        code = main(["collect", "binance", "BTC-USDT", "--db", str(db), "--url",
                     secret_url(server.port), "--duration", "1.5", "--json"])
    finally:
        server.close()
    assert "Handshake status 400" in reason and "location" in reason  # the echo is there
    assert "Handshake status 400" in rtkit_log.text
    assert_no_leak(reason, stats, c.last_error, repr(c), rtkit_log.text)
    out, err = capsys.readouterr()
    summary = json.loads(out.splitlines()[-1])
    assert code in (0, 1) and "Handshake status 400" in summary["last_error"]
    assert_no_leak(out, err)


def test_a_traceback_in_the_rtkit_log_is_redacted_too(db, rtkit_log):
    c = rtkit.Collector("binance", ["BTC-USDT"], url=secret_url(1), db=db)
    try:
        raise ValueError(f"cannot use {c.url}")
    except ValueError:
        logging.getLogger("rtkit").exception("rtkit: something about %s", c.url)
    assert "ValueError: cannot use ws://***@127.0.0.1:1/v3/***" in rtkit_log.text
    assert_no_leak(rtkit_log.text)


def test_a_refused_url_is_not_echoed_by_the_error_or_the_cli(db, capsys):
    bad = secret_url(1, scheme="https")
    with pytest.raises(ValueError, match="ws:// or wss://") as e:
        rtkit.Collector("binance", ["BTC-USDT"], url=bad, db=db)
    assert_no_leak(str(e.value))
    assert main(["collect", "binance", "BTC-USDT", "--db", str(db), "--url", bad]) == 2
    out, err = capsys.readouterr()
    assert "ws:// or wss://" in err
    assert_no_leak(out, err)


def test_group_and_onchain_collectors_redact_too(tmp_path, rtkit_log):
    server = EchoingServer()
    try:
        g = rtkit.collect_many({"binance": ["BTC-USDT"], "coinbase": ["BTC-USD"]},
                               db=tmp_path / "g.sqlite", backoff_initial_s=5,
                               urls={"binance": secret_url(server.port),
                                     "coinbase": secret_url(server.port)})
        wait_for(lambda: all(s == "backoff" for s in g.status.values()))
        shown = [repr(g), json.dumps(g.stats), *(s.reason for s in g.status.values())]
        g.stop()
        pool = Pool("0x" + "11" * 20, token0="USDC", token1="ETH", decimals0=6, decimals1=18,
                    version=3)
        chain = ChainCollector([pool], url=secret_url(server.port), db=tmp_path / "c.sqlite",
                               backoff_initial_s=5).start()
        wait_for(lambda: chain.status == "backoff")
        shown += [repr(chain), json.dumps(chain.stats), chain.status.reason]
        chain.stop()
    finally:
        server.close()
    urls = [row[0] for db in ("g.sqlite", "c.sqlite")
            for row in sqlite3.connect(tmp_path / db).execute("SELECT url FROM runs")]
    assert urls == [redact_url(secret_url(server.port))] * 3
    assert_no_leak(*shown, rtkit_log.text)


def test_keys_after_a_semicolon_or_with_plus_signs_are_hidden_too():
    """``;`` separates parameters in a path segment (``/ws;token=…``) and, for many
    servers, in a query; ``+`` is a space to the server that echoes a value back."""
    key = "k3yV4lu3Secret"
    path_param = f"wss://host/ws;apikey={key}"
    assert key not in redact_url(path_param)
    assert redact_url(f"wss://host/ws;v=2;token={TOKEN}/x") == "wss://host/ws;v=***;token=***/x"
    semicolon_query = f"wss://host/ws?a=1;apikey={key}&b=2"
    plus_query = "wss://host/ws?token=a+b+c+" + key
    for url in (path_param, semicolon_query):
        r = Redactor(url)
        for echo in (f"venue error: invalid key {key}", f"apikey={key} refused"):
            assert key not in r(echo), (url, echo, r(echo))
    assert key not in Redactor(plus_query)(f"token 'a b c {key}' unknown")
    assert Redactor(path_param)("a plain word; apikey stays") == "a plain word; apikey stays"
