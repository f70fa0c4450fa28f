import logging
import sqlite3

import pytest

import rtkit
from rtkit.validate import Reject


def test_process_accepts_raw_text_and_dicts():
    t = rtkit.process_real_time_data('{"price": "101.5", "volume": 2, "timestamp": 1672515782136}')
    assert (t["price"], t["volume"], t["timestamp"]) == (101.5, 2.0, 1672515782136_000_000)
    d = rtkit.process_real_time_data({"price": 3, "volume": "0.5"})
    assert d["timestamp"] == d["received_at"]  # no timestamp: the receive time
    iso = rtkit.process_real_time_data({"price": 1, "volume": 1,
                                        "timestamp": "2023-09-25T07:49:37.708706Z"})
    assert iso["timestamp"] == 1695628177_708706000


@pytest.mark.parametrize(("message", "reason"), [
    ("not json", "malformed_json"), ("[1]", "unknown_message"),
    ({"price": -1, "volume": 1}, "non_positive"), ({"volume": 1}, "missing_field"),
    ({"price": "x", "volume": 1}, "bad_number")])
def test_process_rejects_with_reason(message, reason):
    with pytest.raises(Reject) as info:
        rtkit.process_real_time_data(message)
    assert info.value.reason == reason


def test_store_data_creates_tables_and_refuses_sql_in_names(db):
    rtkit.store_data("signals", {"name": "x", "value": 1.5}, db=db)
    rtkit.store_data("signals", {"name": "y", "value": 2.5, "extra": 1}, db=db)
    rows = sqlite3.connect(db).execute("SELECT name, value, extra FROM signals").fetchall()
    assert rows == [("x", 1.5, None), ("y", 2.5, 1)]
    with pytest.raises(ValueError, match="not a plain name"):
        rtkit.store_data("ticks; DROP TABLE ticks", {"a": 1}, db=db)
    with pytest.raises(ValueError, match="not plain names"):
        rtkit.store_data("ok", {"a b": 1}, db=db)


def test_log_error_goes_to_rtkit_logger_quoted(caplog):
    with caplog.at_level(logging.ERROR, logger="rtkit"):
        rtkit.log_error("bad\nline\x1b[31m")
    assert caplog.records[0].name == "rtkit"
    assert "\n" not in caplog.records[0].getMessage() and "\\n" in caplog.records[0].getMessage()


def test_connect_to_websocket_checks_url():
    with pytest.raises(ValueError, match="ws:// or wss://"):
        rtkit.connect_to_websocket("http://example")


def test_the_plans_functions_live_in_compat_and_in_rtkit():
    """The README names them as ``rtkit.<name>``; their home is ``rtkit.compat``."""
    import rtkit.compat

    for name in ("connect_to_websocket", "process_real_time_data", "start_real_time_collection",
                 "store_data", "log_error"):
        assert getattr(rtkit, name) is getattr(rtkit.compat, name)
        assert getattr(rtkit.compat, name).__module__ == "rtkit.compat"
