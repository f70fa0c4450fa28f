"""The raw-frame recording format: JSON Lines, gzip when the name ends in ``.gz``.

One object per line::

    {"received_at": <int ns>, "venue": "binance", "frame": "<text exactly as received>"}
    {"event": "open" | "close", "received_at": <int ns>, "venue": "binance"}

A frame that is not valid UTF-8 (or was a binary WebSocket frame) is kept
byte-exact as ``"frame_b64"`` with ``"binary": true`` when it came in a binary
frame; a frame refused for its size keeps its first bytes and ``"too_large"``,
its real size. Any run recorded with ``record_raw=`` replays to the same ticks.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

log = logging.getLogger("rtkit")


@dataclass(frozen=True, slots=True)
class Frame:
    received_at: int
    venue: str
    frame: bytes | str
    binary: bool = False
    #: the real size of a frame refused from its header (``frame`` holds its start)
    too_large: int = 0


@dataclass(frozen=True, slots=True)
class Event:
    event: str  # "open" or "close"
    received_at: int
    venue: str
    #: on "open": the symbols subscribed, so a replay subscribes its adapter alike
    symbols: tuple[str, ...] = ()


def open_recording(path: Path, mode: str):
    """A recording file in binary ``mode`` ('r', 'w', 'a'), gzip when it ends in .gz."""
    if path.suffix == ".gz":
        return gzip.open(path, mode + "b")
    return open(path, mode + "b")


def _lines(fh) -> Iterator[bytes]:
    """Lines of a recording; a gzip stream cut short (a crash) simply ends."""
    try:
        yield from fh
    except EOFError:
        log.warning("rtkit: recording ends in the middle of a gzip block (cut short by a "
                    "crash?); replaying what was written before")


def read_recording(path: str | Path) -> Iterator[Frame | Event]:
    """Frames and connection events of a recording, in order.

    Raises ValueError naming the line for a line that is not a recording entry,
    except a broken *last* line, which a crash mid-write leaves: it is skipped
    with a warning, as is the end of a truncated gzip stream.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no recording at '{path}'; give the path of a .jsonl or .jsonl.gz file "
            "(e.g. one written by Collector(record_raw=...))"
        )
    broken: ValueError | None = None
    with open_recording(path, "r") as fh:
        for lineno, line in enumerate(_lines(fh), 1):
            if broken is not None:
                raise broken
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
                if "event" in obj:
                    yield Event(obj["event"], int(obj["received_at"]), obj["venue"],
                                tuple(obj.get("symbols", ())))
                elif "frame_b64" in obj:
                    yield Frame(int(obj["received_at"]), obj["venue"],
                                base64.b64decode(obj["frame_b64"]), bool(obj.get("binary")),
                                int(obj.get("too_large", 0)))
                else:
                    yield Frame(int(obj["received_at"]), obj["venue"], obj["frame"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                broken = ValueError(
                    f"{path}:{lineno} is not a recording line ({type(exc).__name__}: {exc}); "
                    "each line must be {\"received_at\": ns, \"venue\": name, \"frame\": text}"
                )
    if broken is not None:
        log.warning("rtkit: skipped the broken last line of %s (cut short by a crash?)", path)


def encode_frame(received_at: int, venue: str, frame: bytes | str, binary: bool = False) -> bytes:
    """One recording line (with its newline) for a frame."""
    if not binary:
        if isinstance(frame, (bytes, bytearray)):
            with contextlib.suppress(UnicodeDecodeError):
                frame = bytes(frame).decode("utf-8")
        if isinstance(frame, str):
            line = {"received_at": received_at, "venue": venue, "frame": frame}
            return orjson.dumps(line) + b"\n"
    obj = {"received_at": received_at, "venue": venue,
           "frame_b64": base64.b64encode(bytes(frame)).decode()}
    if binary:
        obj["binary"] = True
    return orjson.dumps(obj) + b"\n"


def encode_event(event: str, received_at: int, venue: str, symbols=()) -> bytes:
    line = {"event": event, "received_at": received_at, "venue": venue}
    if symbols:
        line["symbols"] = list(symbols)
    return orjson.dumps(line) + b"\n"


class RecordingWriter:
    """Appends frames to a recording, flushed line by line so a crash loses at most one."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            raw = open_recording(self.path, "a")
        except OSError as exc:
            raise ValueError(
                f"cannot write the recording '{self.path}': {exc}; pass record_raw= a path "
                "in a folder you can write to"
            ) from exc
        self._fh: io.BufferedIOBase = raw

    #: why recording stopped (a full disk…), or None while it works
    failed: str | None = None

    def _write(self, line: bytes) -> None:
        """Write and flush a line; a failure stops the recording, never the collection."""
        if self.failed is not None:
            return
        try:
            self._fh.write(line)
            self._fh.flush()
        except (OSError, ValueError) as exc:
            self.failed = f"{type(exc).__name__}: {exc}"
            log.warning("rtkit: raw recording to %s stopped: %s", self.path, self.failed)

    def frame(self, received_at: int, venue: str, frame, binary: bool = False) -> None:
        self._write(encode_frame(received_at, venue, frame, binary))

    def too_large(self, received_at: int, venue: str, head: bytes, size: int) -> None:
        """A frame refused from its header: its first bytes and its real size."""
        self._write(orjson.dumps({"received_at": received_at, "venue": venue, "too_large": size,
                                  "frame_b64": base64.b64encode(head).decode()}) + b"\n")

    def event(self, event: str, received_at: int, venue: str, symbols=()) -> None:
        self._write(encode_event(event, received_at, venue, symbols))

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._fh.close()
