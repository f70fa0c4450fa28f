"""The audit of an ``unverified`` book is fair to a REST snapshot taken at another instant
than the stream: the levels the stream set since the request went out are left out, the
comparison covers only the prices both books' windows hold, and the answer waits until
the stream has passed the snapshot's time. A real corruption is still caught."""

from __future__ import annotations

from rtkit.books import BookMessage
from rtkit.books.audit import AUDIT_LEVELS, audit_differences
from rtkit.books.keeper import AUDIT_GIVE_UP_S, AUDIT_SETTLE_S, BookKeeper
from rtkit.books.machine import BookMachine
from rtkit.books.rules import rule_for
from tests.conftest import wait_for

SYMBOL = "BTC-USD"
T0 = 1_764_000_000_000_000_000
BIDS = [(f"{99 - i}", "1") for i in range(5)]  # 99 … 95
ASKS = [(f"{101 + i}", "1") for i in range(5)]  # 101 … 105


def ws(at, bids=(), asks=(), snapshot=False):
    return BookMessage(SYMBOL, T0 + at, T0 + at, snapshot, list(bids), list(asks))


def rest(at, bids=BIDS, asks=ASKS):
    return BookMessage(SYMBOL, T0 + at, T0 + at, True, list(bids), list(asks), source="rest")


def live_machine():
    m = BookMachine("coinbase-exchange", SYMBOL, rule_for("coinbase-exchange"))
    m.feed(ws(0, BIDS, ASKS, snapshot=True))
    assert m.state == "unverified"
    return m


def desyncs(step):
    return [e for e in step.events if e[4] == "desynced"]


def test_a_level_the_stream_set_after_the_request_is_left_out_and_a_corruption_is_not():
    m = live_machine()
    token = m.audit_asked()
    m.feed(ws(5, [("98", "3")]))  # after the request: the snapshot (below) predates it
    snap = rest(4)  # 98 still 1 at the venue's instant
    assert audit_differences(m.book, snap) == ["bid 98: local 3 venue 1"]  # the naive view
    assert desyncs(m.audit(snap, token)) == [] and m.audits == 1
    m.feed(ws(6, [("97", "9")]))  # a wrong level, before the next request
    token = m.audit_asked()
    step = m.audit(rest(7, [("99", "1"), ("98", "3"), ("97", "1"), ("96", "1"), ("95", "1")]),
                   token)
    assert "bid 97: local 9 venue 1" in desyncs(step)[0][5] and step.action == "resubscribe"


def test_only_the_prices_both_windows_cover_are_compared():
    """A venue snapshot with one more level above the local book's best (it came after the
    request) ends its window one level higher: the local book's last level is beyond it."""
    deep = [(f"{1000 - i}", "1") for i in range(AUDIT_LEVELS)]
    m = BookMachine("coinbase-exchange", SYMBOL, rule_for("coinbase-exchange"))
    m.feed(ws(0, deep, [("2000", "1")], snapshot=True))
    token = m.audit_asked()
    m.feed(ws(2, [("1000.5", "2")]))
    venue = rest(1, [("1000.5", "2"), *deep], [("2000", "1")])
    assert audit_differences(m.book, venue, m._touched) == []
    assert desyncs(m.audit(venue, token)) == []


class Slow:
    """A REST fetch that answers ``snap`` when told to."""

    def __init__(self, snap):
        self.snap, self.calls = snap, 0

    def __call__(self, symbol):
        self.calls += 1
        return self.snap


def keeper_with(fetch, clock):
    keeper = BookKeeper("coinbase-exchange", [SYMBOL], lambda: rule_for("coinbase-exchange"),
                        fetch=fetch, audit_every_s=1, clock=clock)
    keeper.feed([ws(0, BIDS, ASKS, snapshot=True)])
    return keeper


def test_the_answer_waits_for_the_stream_to_pass_the_snapshots_time():
    """The venue's snapshot (time 10) holds a change made at time 5 that is still on its
    way: compared at once, the book would look wrong. It is compared once a message of a
    later time came, with the level the stream set since the request left out."""
    now = [0]
    fetch = Slow(rest(10, [("99", "1"), ("98", "2"), *BIDS[2:]]))
    keeper = keeper_with(fetch, lambda: now[0])
    try:
        keeper.poll(0)
        now[0] = 10**9
        keeper.poll()  # the audit is asked
        wait_for(lambda: (keeper.poll(), keeper._audit_answers)[1], 5)
        machine = keeper.machines[SYMBOL]
        assert machine.audits == 0  # held: the stream is at time 0, the snapshot at 10
        assert audit_differences(machine.book, fetch.snap) == ["bid 98: local 1 venue 2"]
        keeper.feed([ws(5, [("98", "2")]), ws(11, [("96", "4")])])
        step = keeper.poll()
        assert machine.audits == 1 and desyncs(step) == [] and machine.state == "unverified"
    finally:
        keeper.close()


def untimed(bids=BIDS):
    """A REST book without the venue's time (Coinbase Exchange's documented example)."""
    return BookMessage(SYMBOL, 0, T0, True, list(bids), list(ASKS), source="rest")


def test_a_snapshot_without_the_venues_time_needs_a_second_audit_to_confirm_a_difference():
    """Compared AUDIT_SETTLE_S after it came (the stream may not have passed it): a wrong
    level is a suspect, the next audit is asked at once and confirms it; a suspect level
    the stream set meanwhile is dropped (no desync)."""
    now = [T0]
    keeper = keeper_with(Slow(untimed()), lambda: now[0])
    machine = keeper.machines[SYMBOL]

    def audited(n):
        wait_for(lambda: (keeper.poll(), keeper._audit_answers)[1], 5)
        assert machine.audits == n - 1  # held for the settle time
        now[0] += int(AUDIT_SETTLE_S * 1e9)
        return keeper.poll()

    try:
        keeper.feed([ws(1, [("97", "9"), ("96", "9")])])  # two wrong levels
        keeper.poll()
        now[0] += 10**9
        keeper.poll()  # the audit is asked
        assert desyncs(audited(1)) == [] and machine.recheck is False
        keeper.feed([ws(2, [("96", "1")])])  # the stream sets 96: no longer a suspect
        keeper.poll()  # the confirming audit is asked at once, not a period later
        step = audited(2)
        assert [e[5] for e in desyncs(step)] == [
            "audit: 1 levels differ in the top 50 (bid 97: local 9 venue 1)"]
    finally:
        keeper.close()


def test_a_stream_that_keeps_coming_but_stays_behind_the_snapshot_voids_the_audit():
    """A receiver seconds behind the venue: its messages keep coming, all older than the
    snapshot, so the comparison is never fair; after AUDIT_GIVE_UP_S the audit is void
    (never a desync), and the next period asks again."""
    now = [T0]
    keeper = keeper_with(Slow(rest(10**12, [("99", "1"), ("98", "2"), *BIDS[2:]])),
                         lambda: now[0])  # the venue's snapshot, far ahead of the stream
    try:
        keeper.poll()
        now[0] += 10**9
        keeper.poll()
        wait_for(lambda: (keeper.poll(), keeper._audit_answers)[1], 5)
        machine = keeper.machines[SYMBOL]
        step_s = 0.5
        for i in range(int(AUDIT_GIVE_UP_S / step_s) + 1):
            now[0] += int(step_s * 1e9)
            keeper.feed([BookMessage(SYMBOL, T0 + i, now[0], False, [("90", "1")], [])])
            assert desyncs(keeper.poll()) == []
            if not keeper._audit_answers:
                break
        assert machine.audits == 0 and machine.audits_void == 1
        assert machine.state == "unverified" and keeper.stats()["book_audits_void"] == 1
    finally:
        keeper.close()


def test_an_audit_asked_before_the_book_was_loaded_again_is_void():
    m = live_machine()
    token = m.audit_asked()
    m.feed(ws(3, [("99", "5")], [], snapshot=True))  # a new snapshot replaced the book
    assert desyncs(m.audit(rest(2), token)) == [] and m.audits_void == 1 and m.audits == 0
