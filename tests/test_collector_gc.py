"""The first collector of a process starts with a full garbage collection (issue 17):
one that fell due in its first burst stopped the receive thread ~25 ms."""

import gc
import socket

import pytest

import rtkit
import rtkit.collector as collector_module
from rtkit.runtime import registry

pytestmark = pytest.mark.usefixtures("no_thread_leak")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def full_collections():
    """The full collections started while the test runs; none falls due by itself (the
    oldest generation's threshold is out of reach), so each one counted was asked for."""
    thresholds = gc.get_threshold()
    seen = []

    def note(phase, info):
        if phase == "start" and info["generation"] == 2:
            seen.append(1)

    gc.set_threshold(thresholds[0], thresholds[1], 1 << 30)
    gc.callbacks.append(note)
    try:
        yield seen
    finally:
        gc.callbacks.remove(note)
        gc.set_threshold(*thresholds)


def collector(tmp_path, name):
    return rtkit.Collector("binance", ["BTC-USDT"], url=f"ws://127.0.0.1:{free_port()}/ws",
                           db=tmp_path / f"{name}.sqlite", name=name)


def test_the_first_collector_starts_with_a_full_collection_and_the_next_one_not(
        tmp_path, full_collections, monkeypatch):
    monkeypatch.setattr(collector_module, "FULL_COLLECTION_EVERY_S", 0.0)
    assert not registry.any_running()
    first, second = collector(tmp_path, "first"), collector(tmp_path, "second")
    try:
        first.start()
        assert len(full_collections) == 1
        second.start()  # the first one receives: a collection now would stop it
        assert len(full_collections) == 1
    finally:
        first.stop()
        second.stop()
    assert not registry.any_running()
    again = collector(tmp_path, "again")
    try:
        again.start()  # none runs any more
        assert len(full_collections) == 2
    finally:
        again.stop()


def test_a_start_soon_after_a_collection_runs_none(tmp_path, full_collections, monkeypatch):
    monkeypatch.setattr(collector_module, "FULL_COLLECTION_EVERY_S", 0.0)
    first = collector(tmp_path, "first")
    first.start()
    first.stop()
    assert len(full_collections) == 1
    monkeypatch.setattr(collector_module, "FULL_COLLECTION_EVERY_S", 3600.0)
    second = collector(tmp_path, "second")
    try:
        second.start()  # none runs, but one was collected a moment ago
        assert len(full_collections) == 1
    finally:
        second.stop()


def test_a_program_that_turned_the_garbage_collector_off_gets_no_collection(
        tmp_path, full_collections, monkeypatch):
    monkeypatch.setattr(collector_module, "FULL_COLLECTION_EVERY_S", 0.0)
    gc.disable()
    c = collector(tmp_path, "off")
    try:
        c.start()
        assert len(full_collections) == 0
    finally:
        c.stop()
        gc.enable()
