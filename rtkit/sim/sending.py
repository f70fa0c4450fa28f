"""How the simulator puts frames on the wire, with the :class:`Faults` applied.

Every frame sent is counted by category in ``sent``. Live trade frames go out
one by one when a fault must act between them (drop, close, stall, duplicate,
reorder, hostile frames, throttle), or else pre-encoded in one write paced by
the transport's buffer (the fast path).
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections import Counter

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from rtkit.sim.dialects import Dialect
from rtkit.sim.faults import Faults, Link
from rtkit.sim.hostile import HostileFrame

#: bytes the server lets queue in its transport before it waits for the client
_HIGH_WATER = 1 << 20
#: longest wait for the transport to empty before an abrupt drop
_DRAIN_TIMEOUT_S = 1.0


def ws_frame(payload: bytes) -> bytes:
    """An unmasked server→client text frame with exactly these payload bytes."""
    n = len(payload)
    if n < 126:
        return b"\x81" + bytes((n,)) + payload
    if n < 65536:
        return b"\x81\x7e" + struct.pack("!H", n) + payload
    return b"\x81\x7f" + struct.pack("!Q", n) + payload


class FrameSender:
    """Sending and counting frames, and the faults that act on a connection."""

    # set by the Simulator that this sender is part of
    dialect: Dialect
    faults: Faults
    rate: float | None
    sent: Counter[str]
    reordered: int
    lost_frames: int
    _live_frames: int
    _bad_frames: tuple[HostileFrame, ...]
    _next_bad: int
    _stopping: asyncio.Event

    async def _emit(self, ws: ServerConnection, frame: str | bytes, category: str,
                    binary: bool = False) -> None:
        """Send one frame and count it; ``bytes`` go out as a text frame unless ``binary``."""
        if self.dialect.numbers_frames and isinstance(frame, str):
            frame = self.dialect.number(ws, frame)
        if isinstance(frame, str) or binary:
            await ws.send(frame)
        else:  # a text frame with bytes no library would send: invalid UTF-8 and the like
            if ws.transport.is_closing():
                raise ConnectionClosed(None, None)
            ws.transport.write(ws_frame(frame))
        self.sent[category] += 1

    async def _send_trades(self, ws: ServerConnection, frames: list[str], link: Link) -> bool:
        """Send live trade frames with the faults applied; False once the connection
        was cut, closed or stalled by a fault."""
        faults = self.faults
        if not faults.per_frame:
            if self.rate is None:
                await self._send_blob(ws, frames)
            else:
                for frame in frames:
                    await self._emit(ws, frame, "trades")
            return True
        for frame in frames:
            if faults.throttle_frames_per_s:
                await self._throttle(link, faults.throttle_frames_per_s)
            self._live_frames += 1
            link.trade_frames += 1
            if faults.lose_every and link.faulty and link.trade_frames % faults.lose_every == 0:
                self.lost_frames += 1  # the venue's frame never reaches this connection
                continue
            frame = self._numbered(ws, frame)  # a held frame keeps its place in the numbering
            if self._due(faults.reorder_every) and link.held is None:
                link.held = frame  # goes out after the next one
                continue
            await self._emit(ws, frame, "trades")
            await self._release_held(ws, link)
            if self._due(faults.duplicate_every):
                await self._emit(ws, frame, "duplicates")
            if self._due(faults.bad_frame_every):
                await self._send_bad_frame(ws)
            if not await self._connection_fault(ws, link):
                return False
        return True

    def _numbered(self, ws: ServerConnection, frame: str) -> str:
        """``frame`` numbered now, where the dialect numbers a connection's frames."""
        return self.dialect.number(ws, frame) if self.dialect.numbers_frames else frame

    async def _release_held(self, ws: ServerConnection, link: Link) -> None:
        if link.held is not None:
            held, link.held = link.held, None
            await self._emit(ws, held, "trades")
            self.reordered += 1

    def _due(self, every: int | None) -> bool:
        return bool(every and self._live_frames % every == 0)

    async def _send_bad_frame(self, ws: ServerConnection) -> None:
        frame, reason, binary = self._bad_frames[self._next_bad % len(self._bad_frames)]
        self._next_bad += 1
        await self._emit(ws, frame, f"bad:{reason}" if reason else "control", binary)

    async def _connection_fault(self, ws: ServerConnection, link: Link) -> bool:
        """Drop, close or stall the connection when its frame count says so; False if it did."""
        faults, n = self.faults, link.trade_frames
        if not link.faulty:
            return True
        if faults.drop_every and n % faults.drop_every == 0:
            await self._drain(ws)  # what was counted as sent reaches the client's socket
            ws.transport.abort()
            return False
        if faults.close_every and n % faults.close_every == 0:
            await ws.close(faults.close_code, "simulated close")
            return False
        if faults.stall_every and n % faults.stall_every == 0:
            await self._until_closed(ws)
            return False
        return True

    async def _throttle(self, link: Link, frames_per_s: float) -> None:
        now = time.monotonic()
        if link.next_send > now:
            await asyncio.sleep(link.next_send - now)
        link.next_send = max(now, link.next_send) + 1.0 / frames_per_s

    @staticmethod
    async def _drain(ws: ServerConnection) -> None:
        deadline = time.monotonic() + _DRAIN_TIMEOUT_S
        while ws.transport.get_write_buffer_size() and time.monotonic() < deadline:
            await asyncio.sleep(0.001)

    async def _send_blob(self, ws: ServerConnection, frames: list[str],
                         category: str = "trades") -> None:
        """The fast path: frames pre-encoded into one write, paced by the transport's buffer."""
        if ws.transport.is_closing():
            raise ConnectionClosed(None, None)
        if self.dialect.numbers_frames:
            frames = [self.dialect.number(ws, f) for f in frames]
        ws.transport.write(b"".join(ws_frame(f.encode()) for f in frames))
        self.sent[category] += len(frames)
        while ws.transport.get_write_buffer_size() > _HIGH_WATER:
            if ws.transport.is_closing():
                raise ConnectionClosed(None, None)
            await asyncio.sleep(0.001)

    async def _until_closed(self, ws: ServerConnection, *events: asyncio.Event) -> None:
        """Wait until the connection closes, the simulator stops, or one of ``events``."""
        waits: list[asyncio.Future] = [asyncio.ensure_future(e.wait())
                                       for e in (*events, self._stopping)]
        waits.append(asyncio.ensure_future(ws.wait_closed()))
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
