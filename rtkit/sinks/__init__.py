"""Sinks: where a collector's rows go, behind one small contract.

The writer thread (:mod:`rtkit.runtime.writer`) is the only caller:

* ``open(run)`` once before writing, and again after a refusal closed it;
  raises :class:`SinkRefused` while the destination cannot be written;
* ``check()`` before each write: a problem (in words) that made the sink close
  itself, e.g. its file was moved away, or None;
* ``write(batch, refused)`` one flush; returns how many rows were new (what the
  pipeline's ``done`` takes) and raises when the whole write was refused (busy,
  locked, full: everything is kept and retried). Rows refused one by one (a
  value the destination cannot store) are appended to ``refused`` as
  ``(table, row, error)`` and the rest is written;
* ``close(end)`` once at the end, with the run's final status and counters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class SinkRefused(Exception):
    """The sink cannot take writes now; the message says what its destination said."""


@dataclass(frozen=True)
class RunInfo:
    """What a sink records about a collection run when it opens."""

    name: str
    venue: str
    symbols: list[str]
    url: str
    config: dict = field(default_factory=dict)
    started_at: int = 0


@dataclass(frozen=True)
class RunEnd:
    """How a run ended: what a sink records when it closes."""

    stopped_at: int
    status: str
    counters: dict


class Sink(Protocol):
    """The contract above; ``where`` names the destination in messages."""

    where: str

    @property
    def is_open(self) -> bool: ...

    def open(self, run: RunInfo) -> None: ...

    def check(self) -> str | None: ...

    def write(self, batch, refused: list): ...

    def close(self, end: RunEnd | None = None) -> None: ...
