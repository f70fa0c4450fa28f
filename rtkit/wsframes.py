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


class Oversized(bytes):
    """The first bytes of a message over the size limit, with its whole ``size``: one
    read may hold several such messages, each with its own size."""

    size: int

    def __new__(cls, head: bytes, size: int) -> Oversized:
        obj = super().__new__(cls, head)
        obj.size = size
        return obj


class ProtocolError(Exception):
    """The peer broke RFC 6455: the connection must end (after the messages before it)."""


class FrameReader:
    """Turns received bytes into complete ``(opcode, payload)`` messages.

    Fragmented messages are joined; control frames (ping, pong, close) come
    out as they arrive, even between fragments. A data message longer than
    ``max_message_bytes`` comes out once as ``(TOO_LARGE, first_bytes)``, an
    :class:`Oversized` whose ``size`` is the message's (``too_large_size``: the
    latest one's), and its payload is skipped, never buffered.

    A protocol error never costs the messages completed before it: ``feed``
    returns them and keeps the error in ``error``, to be raised by the next
    ``feed`` (at once when there is nothing to return). The caller processes
    what it got, then ends the connection with ``error``.
    """

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        # the start of an incomplete frame: the bytes left from one read, grown in place
        # (a bytearray) while more reads do not complete it, so a frame trickled in many
        # reads is copied about once, not once per read, and costs no memory per read
        self._pending: bytes | bytearray = b""
        self._need = 0  # bytes that frame has in all; 0 while its header is incomplete
        # the payload of the fragmented message under way, in one buffer: a list with an
        # object per fragment cost ~50 bytes per tiny fragment, and empty ones (which add
        # nothing to the size checked against the limit) grew it without end
        self._fragments = bytearray()
        self._fragment_opcode = 0  # of the fragmented message under way; -1: being skipped
        self._fragment_size = 0
        self._skip = 0  # bytes of an oversized message still to discard
        self._skip_fin = True
        self.too_large_size = 0
        self.error: ProtocolError | None = None

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Every complete message in ``data`` plus what was left from before."""
        if self.error is not None:
            raise self.error
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return []
            data = data[self._skip:]
            self._skip = 0
            if not self._skip_fin:
                self._fragment_opcode = -1  # keep skipping the continuation frames
        pending = self._pending
        if pending:
            if len(pending) + len(data) < self._need:  # still incomplete
                if type(pending) is bytes:
                    pending = self._pending = bytearray(pending)
                pending += data  # in place
                return []
            if type(pending) is bytes:  # the common case: the tail of the last read
                buf = pending + data
            else:
                pending += data
                buf = bytes(pending)
            self._pending = b""
        else:
            buf = data
        out: list[tuple[int, bytes]] = []
        pos, end = 0, len(buf)
        need = 0
        limit = self.max_message_bytes
        fragment_opcode = self._fragment_opcode  # a local in the loop, stored back after it
        try:
            while end - pos >= 2:
                b0 = buf[pos]
                n = buf[pos + 1]
                if n & 0x80 or b0 & 0x70:
                    raise ProtocolError("the server sent a masked frame" if n & 0x80 else
                                        "a frame with reserved bits (RSV1-3) set, but no "
                                        "extension was agreed")
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
                    if n >> 63:
                        raise ProtocolError("a 64-bit frame length with its most significant "
                                            "bit set")
                    head = 10
                opcode = b0 & 0x0F
                fin = b0 & 0x80
                start = pos + head
                # judged from the header, before any payload is waited for or kept
                # (opcodes as literals: the hot path saves the global look-ups)
                if opcode == 0x1 or opcode == 0x2:  # TEXT, BINARY
                    if fragment_opcode:
                        raise ProtocolError("a new message began inside a fragmented one")
                elif opcode == CONTINUATION:
                    if not fragment_opcode:
                        raise ProtocolError("continuation frame without a message to continue")
                elif opcode >= 0x8:
                    if opcode not in (CLOSE, PING, PONG):
                        raise ProtocolError(f"unknown control opcode {opcode}")
                    if n > 125 or not fin:
                        raise ProtocolError("control frame longer than 125 bytes or fragmented")
                else:
                    raise ProtocolError(f"unknown opcode {opcode}")
                if n > limit and opcode < 0x8:
                    if opcode != CONTINUATION or fragment_opcode != -1:  # not yet reported
                        total = n + (self._fragment_size if opcode == CONTINUATION else 0)
                        self.too_large_size = total
                        out.append((TOO_LARGE, Oversized(buf[start : start + KEEP_OF_TOO_LARGE],
                                                         total)))
                        self._fragments, self._fragment_size = bytearray(), 0
                    fragment_opcode = 0 if fin else -1
                    if start + n > end:
                        self._skip = start + n - end
                        self._skip_fin = bool(fin)
                        return out
                    pos = start + n
                    continue
                if start + n > end:
                    need = start + n - pos
                    break
                payload = buf[start : start + n]
                pos = start + n
                if opcode == 0x1 or opcode == 0x2:
                    if fin:
                        out.append((opcode, payload))
                    else:
                        fragment_opcode, self._fragments = opcode, bytearray(payload)
                        self._fragment_size = n
                elif opcode == CONTINUATION:
                    if fragment_opcode == -1:
                        if fin:
                            fragment_opcode = 0
                        continue
                    self._fragments += payload
                    self._fragment_size += n
                    if self._fragment_size > limit:
                        self.too_large_size = self._fragment_size
                        out.append((TOO_LARGE, Oversized(
                            bytes(self._fragments[:KEEP_OF_TOO_LARGE]), self._fragment_size)))
                        self._fragments, self._fragment_size = bytearray(), 0
                        fragment_opcode = 0 if fin else -1
                    elif fin:
                        out.append((fragment_opcode, bytes(self._fragments)))
                        self._fragments, fragment_opcode, self._fragment_size = bytearray(), 0, 0
                else:  # a control frame, checked above
                    out.append((opcode, payload))
        except ProtocolError as exc:
            self.error = exc
            if not out:
                raise
            return out
        finally:
            self._fragment_opcode = fragment_opcode
        if pos < end:
            self._pending = buf[pos:]
            self._need = need
        return out
