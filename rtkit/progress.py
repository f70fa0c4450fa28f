"""Long work in the foreground (replay, export): a progress bar, and Ctrl-C as a stop.

The bar is tqdm's (``tqdm.auto``: text in a terminal, a widget in a notebook),
with its rate and ETA. It is shown only where someone watches: a terminal or a
notebook, never into a file, a pipe or a test's captured output, unless asked
(``show=True``). ``StopOnInterrupt`` turns the first Ctrl-C (SIGINT, which is
also what a notebook's interrupt button sends) into a request the work loop
reads between two steps, so the loop stops where its state is whole and still
returns its summary; a second Ctrl-C interrupts at once, as usual.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any, TextIO

from tqdm.auto import tqdm

#: seconds between two redraws of a bar (tqdm's own default is 0.1)
BAR_REFRESH_S = 0.25


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where tqdm.auto draws a widget)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None  # type: ignore[attr-defined]
    return type(shell).__name__ == "ZMQInteractiveShell"


def watched(stream: TextIO | None = None) -> bool:
    """Whether a bar on ``stream`` (default stderr) would be seen: a terminal or a notebook."""
    if in_notebook():
        return True
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def bar(total: int | None, *, desc: str, unit: str = "B", show: bool | None = None,
        **options: Any) -> tqdm:
    """A progress bar counting ``unit`` up to ``total`` (None: no ETA, a count and rate).

    ``show``: True or False forces it; None shows it where :func:`watched`. A bar not
    shown costs nothing to update. Use it as a context manager, or ``close()`` it.
    Bytes (``unit="B"``) are shown as KiB/MiB.
    """
    shown = watched() if show is None else show
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True,
                unit_divisor=1024 if unit == "B" else 1000, disable=not shown,
                file=sys.stderr, mininterval=BAR_REFRESH_S, dynamic_ncols=True, **options)


def advance_to(progress: tqdm, position: int) -> None:
    """Move ``progress`` to ``position`` (a file offset, a row count): tqdm counts steps."""
    if position > progress.n:
        progress.update(position - progress.n)


class StopOnInterrupt:
    """While active (``with``), the first Ctrl-C sets ``.requested`` instead of raising.

    Only the main thread receives signals: elsewhere this does nothing and Ctrl-C
    behaves as it always does. The handler in place before is restored on exit.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._active = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # a second Ctrl-C: the user insists
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._active = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._active:
            signal.signal(signal.SIGINT, self._previous)
            self._active = False
