"""Server-to-client WebSocket frames read from a buffer, many per socket read.

websocket-client makes two or three system calls per message (a 2-byte header
read, a payload read, a select); on a busy feed that is most of the cost. The
collector still lets websocket-client connect (TLS, proxies, the HTTP
upgrade) and send, but reads the socket itself in large chunks and splits
them here: one ``recv`` serves hundreds of frames. Being the reader also lets
it refuse an oversized frame from its header, before buffering its payload.
"""

from __future__ import annotations

TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
#: pseudo-opcode for a data frame over the size limit; its payload is the first bytes
TOO_LARGE = -1
#: how much of an oversized frame is kept for the rejects table
KEEP_OF_TOO_LARGE = 4096


class ProtocolError(Exception):
    """The peer broke RFC 6455 (masked server frame, bad continuation, long control frame)."""


class FrameReader:
    """Turns received bytes into complete ``(opcode, payload)`` messages.

    Fragmented messages are joined; control frames (ping, pong, close) come
    out as they arrive, even between fragments. A data message longer than
    ``max_message_bytes`` comes out once as ``(TOO_LARGE, first_bytes)`` with
    ``too_large_size`` set, and its payload is skipped, never buffered.
    """

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        self._buf = b""
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._fragment_size = 0
        self._skip = 0  # bytes of an oversized message still to discard
        self._skip_fin = True
        self.too_large_size = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Every complete message in ``data`` plus what was left from before."""
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return []
            data = data[self._skip:]
            self._skip = 0
            if not self._skip_fin:
                self._fragment_opcode = -1  # keep skipping the continuation frames
        buf = self._buf + data if self._buf else data
        out: list[tuple[int, bytes]] = []
        pos, end = 0, len(buf)
        limit = self.max_message_bytes
        while end - pos >= 2:
            b0 = buf[pos]
            n = buf[pos + 1]
            if n & 0x80:
                raise ProtocolError("the server sent a masked frame")
            head = 2
            if n == 126:
                if end - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif n == 127:
                if end - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            start = pos + head
            # judged from the header, before any payload is waited for or kept
            if opcode >= 0x8:
                if opcode not in (CLOSE, PING, PONG):
                    raise ProtocolError(f"unknown control opcode {opcode}")
                if n > 125 or not fin:
                    raise ProtocolError("control frame longer than 125 bytes or fragmented")
            elif opcode not in (TEXT, BINARY, CONTINUATION):
                raise ProtocolError(f"unknown opcode {opcode}")
            if n > limit and opcode < 0x8:
                if opcode == CONTINUATION and self._fragment_opcode == -1:
                    pass  # already reported
                else:
                    total = n + (self._fragment_size if opcode == CONTINUATION else 0)
                    self.too_large_size = total
                    out.append((TOO_LARGE, bytes(buf[start : start + KEEP_OF_TOO_LARGE])))
                    self._fragments, self._fragment_size = [], 0
                self._fragment_opcode = 0 if fin else -1
                if start + n > end:
                    self._skip = start + n - end
                    self._skip_fin = bool(fin)
                    self._buf = b""
                    return out
                pos = start + n
                continue
            if start + n > end:
                break
            payload = buf[start : start + n]
            pos = start + n
            if opcode in (TEXT, BINARY):
                if fin:
                    out.append((opcode, payload))
                else:
                    self._fragment_opcode, self._fragments = opcode, [payload]
                    self._fragment_size = n
            elif opcode == CONTINUATION:
                if self._fragment_opcode == -1:
                    if fin:
                        self._fragment_opcode = 0
                    continue
                if not self._fragment_opcode:
                    raise ProtocolError("continuation frame without a message to continue")
                self._fragments.append(payload)
                self._fragment_size += n
                if self._fragment_size > limit:
                    self.too_large_size = self._fragment_size
                    out.append((TOO_LARGE, b"".join(self._fragments)[:KEEP_OF_TOO_LARGE]))
                    self._fragments, self._fragment_size = [], 0
                    self._fragment_opcode = 0 if fin else -1
                elif fin:
                    out.append((self._fragment_opcode, b"".join(self._fragments)))
                    self._fragments, self._fragment_opcode, self._fragment_size = [], 0, 0
            else:  # a control frame, checked above
                out.append((opcode, payload))
        self._buf = buf[pos:] if pos < end else b""
        return out
