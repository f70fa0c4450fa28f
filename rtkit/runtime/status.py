"""The collector's status as a state machine: one table says which change is allowed.

Two threads and ``stop()`` move the status. Every move goes through
:meth:`StatusMachine.move`, which checks it against :data:`TRANSITIONS`: a move
the table does not list is a bug and raises :class:`IllegalTransition` (the
receive thread turns that into ``failed`` with the reason, so it is never
silent). Once a stop has been requested the running states are no longer
entered (a thread on its way out may still try: that is ignored, not an
error), which is what keeps a status from showing ``live`` after a stop.

``storage_error`` is not a state of the table: it is how ``.status`` shows a
running collector whose sink refuses writes (see ``Collector.status``).
"""

from __future__ import annotations

import logging
import threading

from rtkit.typedefs import STATES as STATES  # the states, declared once for the type checker

log = logging.getLogger("rtkit")

#: states of a collector that is collecting; not entered once a stop was requested
RUNNING = frozenset({"connecting", "live", "stale", "backoff"})
#: states nothing leaves
FINAL = frozenset({"stopped", "failed"})
#: state → the states it may move to (a move to itself updates the reason)
TRANSITIONS: dict[str, frozenset[str]] = {
    "idle": frozenset({"connecting", "stopped", "failed"}),
    "connecting": frozenset({"connecting", "live", "backoff", "stopping", "stopped", "failed"}),
    "live": frozenset({"live", "stale", "backoff", "stopping", "stopped", "failed"}),
    "stale": frozenset({"backoff", "stopping", "stopped", "failed"}),
    "backoff": frozenset({"connecting", "stopping", "stopped", "failed"}),
    "stopping": frozenset({"stopping", "stopped", "failed"}),
    "stopped": frozenset(),
    "failed": frozenset(),
}
#: ``.status.reason`` while stop() was asked for but the threads have not ended yet
STILL_FINISHING = ("threads still finishing (a connect in progress or the final flush); "
                   "call stop() again to wait for them")


class IllegalTransition(RuntimeError):
    """A move that :data:`TRANSITIONS` does not allow: a bug in rtkit."""


class Status(str):
    """The collector's state (one of STATES); ``.reason`` says why, when it matters."""

    reason: str

    def __new__(cls, state: str, reason: str = "") -> Status:
        obj = super().__new__(cls, state)
        obj.reason = reason
        return obj

    def __repr__(self) -> str:
        return f"{str(self)!r} ({self.reason})" if self.reason else repr(str(self))


class StatusMachine:
    """The current :class:`Status`, moved only along :data:`TRANSITIONS`."""

    def __init__(self, redact=str) -> None:
        self._redact = redact  # reasons can quote a URL: its secrets never get in
        self._lock = threading.Lock()
        self._status = Status("idle")
        self.stop_requested = False

    @property
    def current(self) -> Status:
        return self._status

    def move(self, state: str, reason: str = "") -> bool:
        """Enter ``state``; False when a stop request makes the move moot (a running
        state, or ``stopping`` once the threads have ended)."""
        with self._lock:
            return self._move(state, reason)

    def _move(self, state: str, reason: str) -> bool:
        old = str(self._status)
        if self.stop_requested and (state in RUNNING or (state == "stopping" and old in FINAL)):
            return False
        if state not in TRANSITIONS.get(old, ()):
            allowed = ", ".join(sorted(TRANSITIONS[old])) or "none"
            raise IllegalTransition(f"status cannot go from {old!r} to {state!r} "
                                    f"(allowed: {allowed})")
        self._status = Status(state, self._redact(reason))
        return True

    def request_stop(self) -> None:
        """From now on the running states are not entered."""
        with self._lock:
            self.stop_requested = True

    def finish(self) -> None:
        """The threads have ended: ``stopped`` unless the status already ended."""
        with self._lock:
            if str(self._status) not in FINAL:
                self._move("stopped", "")

    @staticmethod
    def table() -> str:
        """The transitions, one line per state (for docs and debugging)."""
        return "\n".join(f"{s:>10} → {', '.join(sorted(t)) or '(final)'}"
                         for s, t in TRANSITIONS.items())


class LastError:
    """The newest problem, in words, without the URL's secrets (``Collector.last_error``)."""

    def __init__(self, name: str, redact=str) -> None:
        self._name, self._redact = name, redact
        self.text = ""

    def set(self, text: str) -> None:
        self.text = self._redact(text)

    def report(self, text: str) -> None:
        """Set it and say it in the log."""
        self.set(text)
        log.warning("rtkit: %s: %s", self._name, self.text)


def shown_status(current: Status, *, stop_requested: bool, running: bool, verdict: Status | None,
                 storage_problem: str, pending: int, dropped_overflow: int) -> Status:
    """What ``Collector.status`` shows: the writer's final verdict if it failed; after a
    stop request ``stopping`` then ``stopped`` (never a running state again); and
    ``storage_error`` while the sink refuses writes."""
    if verdict is not None:
        return verdict
    status = current
    if stop_requested and status not in ("stopped", "failed"):
        if not running:
            return Status("stopped")
        if status != "stopping":
            status = Status("stopping", STILL_FINISHING)
    if storage_problem and status not in ("stopped", "failed"):
        dropped = (f", {dropped_overflow:,} more dropped over pending_limit"
                   if dropped_overflow else "")
        return Status("storage_error", f"{storage_problem}; {pending:,} ticks kept in "
                      f"memory{dropped}, retrying")
    return status
