"""Kraken books (v2 and v1): what a checksum over the top 10 levels sees of a lost update.

Kraken's books carry no sequence; the proof is the CRC32 of the top 10 levels on
every update. A lost update whose levels lie deeper than the 10th leaves the
local book wrong below the checksum's reach until those levels surface (or are
overwritten, or pushed out of the subscribed depth). This replays the
simulator's Kraken frames (:mod:`rtkit.sim.dialects.kraken`, ``kraken_v1``) into
a book machine without a socket, drops every ``drop_every``-th update and
classifies each drop by comparing the local book with the simulator's after
every message:

* ``detected``: a checksum mismatch resynced the book (a new snapshot, as the
  resubscribe gives); ``latency`` is the updates received from the drop to it;
* ``healed``: the local book became equal to the simulator's again (at the full
  subscribed depth) before any check could differ: later updates overwrote
  what was lost, nothing was ever wrong in the top 10;
* ``hidden_long``: still wrong below the top 10 when the next drop came
  (``drop_every`` updates later); the desync that follows is counted for the
  newer drop, so these are counted as not detected;
* ``hidden_at_end``: still wrong below the top 10 when the run ended;
* ``missed``: the top 10 differed and no desync followed — must be 0 (that is
  the fault class the rule can see, and it must see all of it);
* ``false_desyncs``: a desync with no drop open — must be 0.

Run alone: ``python -m benchmarks.books_kraken [--messages 200000]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass, field

SYMBOL = "BTC-USD"
T0 = 1_764_000_000_000_000_000


@dataclass
class DropReport:
    venue: str
    depth: int
    updates: int = 0  # updates sent (dropped ones included)
    drops: int = 0
    detected: int = 0
    healed: int = 0
    hidden_long: int = 0
    hidden_at_end: int = 0
    missed: int = 0
    false_desyncs: int = 0
    latency: list[int] = field(default_factory=list)  # updates from a drop to its desync

    def figures(self) -> dict:
        lat = sorted(self.latency) or [0]
        key = f"kraken_{self.venue.replace('-', '_')}_depth{self.depth}"
        return {f"{key}_drops": self.drops, f"{key}_detected": self.detected,
                f"{key}_healed": self.healed, f"{key}_hidden_long": self.hidden_long,
                f"{key}_hidden_at_end": self.hidden_at_end,
                f"{key}_missed": self.missed, f"{key}_false_desyncs": self.false_desyncs,
                f"{key}_detect_latency_median": statistics.median(lat),
                f"{key}_detect_latency_max": lat[-1]}


def replay_drops(venue: str, depth: int, updates: int, drop_every: int, *, seed: int = 7,
                 levels: int = 50) -> DropReport:
    """Replay ``updates`` Kraken updates of one simulated book at ``depth``, every
    ``drop_every``-th left out, and classify each drop (see the module's docstring)."""
    from rtkit.books.checksum import KRAKEN_LEVELS
    from rtkit.books.machine import BookMachine
    from rtkit.books.rules import rule_for
    from rtkit.sim.book import SimBooks
    from rtkit.sim.dialects import get_dialect
    from rtkit.venues import get_adapter

    dialect = get_dialect(venue)
    adapter = get_adapter(venue)
    adapter.configure(("book",), depth)
    adapter.subscribe_messages([SYMBOL])
    book = SimBooks(seed, levels).book(SYMBOL)
    machine = BookMachine(venue, SYMBOL, rule_for(venue), max_levels=depth)
    report = DropReport(venue, depth)
    clock = iter(range(T0, T0 + 10 * updates + 10**6))

    def feed(frame: str) -> None:
        for msg in adapter.parse(frame, next(clock))["book"]:
            machine.feed(msg)

    def resubscribe() -> None:
        bids, asks, seq = book.snapshot(depth)
        feed(dialect.encode_book(SYMBOL, True, bids, asks, seq, 0, T0, book, depth))

    resubscribe()
    open_drops: list[int] = []  # update numbers of the drops not yet resolved
    while report.updates < updates:
        prev = book.seq
        bids, asks = book.step()
        frame = dialect.encode_book(SYMBOL, False, bids, asks, book.seq, prev, T0, book, depth)
        if frame is None:
            continue  # nothing within the subscribed depth changed: Kraken sends nothing
        report.updates += 1
        if report.updates % drop_every == 0:
            report.drops += 1
            report.hidden_long += len(open_drops)
            open_drops[:] = [report.updates]
            continue
        feed(frame)
        if machine.state != "live":
            if not open_drops:
                report.false_desyncs += 1
            report.detected += len(open_drops)
            report.latency += [report.updates - at for at in open_drops]
            open_drops.clear()
            resubscribe()
            continue
        if not open_drops:
            continue
        truth = dialect.book_text(book, depth)
        local = (machine.book.levels("bid", depth), machine.book.levels("ask", depth))
        if local == truth:
            report.healed += len(open_drops)
            open_drops.clear()
        elif (local[0][:KRAKEN_LEVELS], local[1][:KRAKEN_LEVELS]) != \
                (truth[0][:KRAKEN_LEVELS], truth[1][:KRAKEN_LEVELS]):
            report.missed += len(open_drops)  # the checksum should have seen this one
            open_drops.clear()
    report.hidden_at_end = len(open_drops)
    return report


def run(updates: int = 200_000, drop_every: int = 100) -> dict:
    out: dict = {}
    for venue in ("kraken", "kraken-v1"):
        for depth in (10, 25, 100):
            out.update(replay_drops(venue, depth, updates, drop_every).figures())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.books_kraken")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--drop-every", type=int, default=100)
    args = parser.parse_args(argv)
    for key, value in run(args.messages, args.drop_every).items():
        print(f"{key:<48} {value:>12,.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
