"""rtkit.wsframes: server frames split out of arbitrary socket chunks."""

import struct

import pytest

from rtkit.wsframes import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    TEXT,
    TOO_LARGE,
    FrameReader,
    ProtocolError,
)  # fmt: skip


def frame(payload: bytes, opcode: int = TEXT, fin: bool = True) -> bytes:
    n = len(payload)
    head = bytes((0x80 * fin | opcode,))
    if n < 126:
        return head + bytes((n,)) + payload
    if n < 65536:
        return head + b"\x7e" + struct.pack("!H", n) + payload
    return head + b"\x7f" + struct.pack("!Q", n) + payload


def feed_in_pieces(reader: FrameReader, data: bytes, size: int) -> list:
    out = []
    for i in range(0, len(data), size):
        out += reader.feed(data[i : i + size])
    return out


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 100, 10_000])
def test_frames_come_out_whole_whatever_the_chunking(piece):
    payloads = [b"a" * n for n in (0, 1, 125, 126, 300, 70_000)]
    data = b"".join(frame(p) for p in payloads) + frame(b"\x00\x01", BINARY)
    out = feed_in_pieces(FrameReader(1 << 20), data, piece)
    assert out == [(TEXT, p) for p in payloads] + [(BINARY, b"\x00\x01")]


def test_fragments_are_joined_and_controls_pass_between_them():
    data = (frame(b"hel", TEXT, fin=False) + frame(b"ping!", PING)
            + frame(b"lo", CONTINUATION, fin=True))
    assert FrameReader(100).feed(data) == [(PING, b"ping!"), (TEXT, b"hello")]


def test_an_oversized_message_is_refused_from_its_header_and_skipped():
    big = b"x" * 50_000
    data = frame(big) + frame(b"after")
    reader = FrameReader(10_000)
    out = feed_in_pieces(reader, data, 4096)
    assert out[0][0] == TOO_LARGE and len(out[0][1]) <= 4096
    assert reader.too_large_size == 50_000 and out[1:] == [(TEXT, b"after")]
    assert not reader._buf  # the payload was never kept


def test_an_oversized_fragmented_message_is_reported_once():
    data = (frame(b"x" * 60, TEXT, fin=False) + frame(b"y" * 60, CONTINUATION, fin=False)
            + frame(b"z" * 60, CONTINUATION, fin=True) + frame(b"ok"))
    out = FrameReader(100).feed(data)
    assert [o[0] for o in out] == [TOO_LARGE, TEXT] and out[1][1] == b"ok"


@pytest.mark.parametrize(("data", "match"), [
    (b"\x81\x85abcd12345", "masked"),
    (b"\x89\x7f" + struct.pack("!Q", 1 << 40), "control frame longer"),  # no payload needed
    (b"\x09\x01x", "fragmented"),
    (b"\x8b\x00", "unknown control opcode"),
    (b"\x83\x00", "unknown opcode"),
    (frame(b"x", CONTINUATION), "continuation frame without"),
])
def test_protocol_errors(data, match):
    with pytest.raises(ProtocolError, match=match):
        FrameReader(1 << 20).feed(data)


def test_close_frame_comes_out():
    assert FrameReader(100).feed(frame(b"\x03\xe8bye", CLOSE)) == [(CLOSE, b"\x03\xe8bye")]
