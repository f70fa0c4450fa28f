import math

import pytest

from rtkit.validate import AnomalyFilter, Reject, epoch_ns, iso_ns, positive, trade_time_ns


@pytest.mark.parametrize(
    ("value", "expected"),
    [("64060.00000000", 64060.0), ("0.00033", 0.00033), (0.5117, 0.5117), (3, 3.0),
     ("1e-8", 1e-8)],
)
def test_positive_accepts_decimal_text_and_numbers(value, expected):
    assert positive(value, "p") == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [("-5", "non_positive"), ("0", "non_positive"), (0, "non_positive"), ("NaN", "bad_number"),
     ("abc", "bad_number"), ("", "bad_number"), (True, "bad_number"), ([1], "bad_number"),
     ("1e308", "out_of_range"), ("inf", "out_of_range"), (None, "missing_field"),
     (float("nan"), "bad_number")],
)
def test_positive_rejects_with_reason(value, reason):
    with pytest.raises(Reject) as info:
        positive(value, "p")
    assert info.value.reason == reason


def test_float_parse_keeps_float64_precision():
    # the exact decimal text rounds to the nearest float64, the best a REAL can hold
    assert positive("0.1", "p") == 0.1
    assert positive("64060.12345678", "p") == float("64060.12345678")


@pytest.mark.parametrize(
    ("value", "unit", "ns"),
    [(1672515782136, "ms", 1672515782136_000_000),
     ("1672515782136", "ms", 1672515782136_000_000),
     (1583691851934000, "us", 1583691851934000_000),
     ("1534614057.321597", "s", 1534614057_321597000),
     ("1534614057.3215971239", "s", 1534614057_321597123),
     (1534614057, "s", 1534614057_000000000),
     (1672515782136000000, "ns", 1672515782136000000)],
)
def test_epoch_ns_units(value, unit, ns):
    assert epoch_ns(value, unit) == ns


@pytest.mark.parametrize("value", ["soon", "12.3.4", -5, 10**30, 5, "", None, [], float("inf"),
                                   "\u00b2", "9" * 5000])
def test_epoch_ns_rejects(value):
    with pytest.raises(Reject) as info:
        epoch_ns(value, "ms")
    assert info.value.reason in ("bad_timestamp", "missing_field")


@pytest.mark.parametrize(
    ("value", "ns"),
    [(1764000000, 1764000000_000000000), ("1764000000.5", 1764000000_500000000),
     (1764000000123, 1764000000_123000000), ("1764000000123", 1764000000_123000000),
     (1764000000123456, 1764000000_123456000), (1764000000123456789, 1764000000_123456789),
     (1764000000.0, 1764000000_000000000), ("2025-11-24T16:00:00.5Z", 1764000000_500000000),
     (946684800, 946684800_000000000), (4102444799999, 4102444799_999000000)],
)
def test_trade_time_auto_tells_the_unit_by_size(value, ns):
    assert trade_time_ns(value, "auto") == ns


@pytest.mark.parametrize("value", ["soon", "", "\u00b2", [1], True, 123, float("nan"), None])
def test_trade_time_auto_rejects(value):
    with pytest.raises(Reject) as info:
        trade_time_ns(value, "auto")
    assert info.value.reason in ("bad_timestamp", "missing_field")


def test_trade_time_fixed_units():
    assert trade_time_ns("2025-11-24T16:00:00Z", "iso") == 1764000000_000000000
    assert trade_time_ns(1764000000, "s") == 1764000000_000000000
    with pytest.raises(Reject):
        trade_time_ns(1764000000, "ms")  # 1970 in ms: a wrong unit is caught, not guessed


@pytest.mark.parametrize(
    ("text", "ns"),
    [("2023-09-25T07:49:37.708706Z", 1695628177_708706000),
     ("2023-06-23T20:31:26.122969572Z", 1687552286_122969572),
     ("2014-11-07T08:19:27.028459Z", 1415348367_028459000),
     ("2014-11-07T08:19:27Z", 1415348367_000000000),
     ("2014-11-07T09:19:27.5+01:00", 1415348367_500000000),
     ("2024-02-29T00:00:00Z", 1709164800_000000000)],
)
def test_iso_ns(text, ns):
    assert iso_ns(text) == ns


@pytest.mark.parametrize("text", ["2023-13-01T00:00:00Z", "yesterday", "2023-09-25", 17, None,
                                  "2023-09-25T07:49:37.Z", "2023-09-25T07:49:37+0100"])
def test_iso_ns_rejects(text):
    with pytest.raises(Reject):
        iso_ns(text)


def test_iso_matches_pandas_on_many_times():
    import pandas as pd

    for text in ["1999-12-31T23:59:59Z", "2000-01-01T00:00:00.000001Z", "2038-01-19T03:14:08Z",
                 "2099-12-31T23:59:59.999999999Z"]:
        want = pd.Timestamp(text).value
        if want < 946684800 * 10**9:
            with pytest.raises(Reject):
                iso_ns(text)
        else:
            assert iso_ns(text) == want


def test_anomaly_filter_rejects_outliers_after_warmup():
    f = AnomalyFilter(max_deviation=0.1, window=11, min_samples=5)
    for p in [100, 101, 99, 100, 102]:
        f.check("X", p)
    f.check("X", 105)  # within 10 %
    with pytest.raises(Reject) as info:
        f.check("X", 150)
    assert info.value.reason == "anomaly"
    f.check("Y", 1.0)  # symbols are independent
    assert math.isclose(f._median["X"], 100.5)


def test_anomaly_filter_bad_arguments_say_what_to_do():
    with pytest.raises(ValueError, match="max_deviation"):
        AnomalyFilter(max_deviation=0)


def test_iso_ns_minute_cache_reads_each_time_right():
    # the same minute read twice (fast path) and a new minute and offset (full path)
    assert iso_ns("2023-09-25T07:49:37.708706Z") == 1695628177_708706000
    assert iso_ns("2023-09-25T07:49:59.1Z") == 1695628199_100000000
    assert iso_ns("2023-09-25T07:50:00.000000001Z") == 1695628200_000000001
    assert iso_ns("2023-09-25T08:50:00.5+01:00") == 1695628200_500000000
    assert iso_ns("2023-09-25T07:50:01.5Z") == 1695628201_500000000
    with pytest.raises(Reject):
        iso_ns("2023-09-25T07:50:1x.5Z")


def test_anomaly_filter_follows_a_move_that_persists():
    f = AnomalyFilter(max_deviation=0.1, window=11, min_samples=3)
    for p in [100, 100, 100]:
        f.check("X", p)
    for p in [200, 201]:  # a jump: rejected while it could still be an error
        with pytest.raises(Reject):
            f.check("X", p)
    f.check("X", 202)  # the third in a row: the market has moved
    f.check("X", 199)
    with pytest.raises(Reject):
        f.check("X", 100)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns", "auto"])
@pytest.mark.parametrize("value", [1e308, -1e308, 1.7976931348623157e308, 1e300, float("nan"),
                                   float("-inf")])
def test_times_that_overflow_when_scaled_are_bad_timestamps(value, unit):
    # 1e308 is finite, but 1e308 * 1e6 is not: a reject, never an OverflowError
    with pytest.raises(Reject) as info:
        trade_time_ns(value, unit)
    assert info.value.reason == "bad_timestamp"
