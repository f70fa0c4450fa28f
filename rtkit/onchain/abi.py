"""Ethereum's hex forms and the ABI of the Uniswap ``Swap`` events, both ways.

One module for the collector's decoder and the simulator's encoder, so the two
can only disagree with the hand-computed vectors in the tests, never silently
with each other.

JSON-RPC sends numbers ("quantities") as ``0x``-prefixed hex, and hashes and
addresses as fixed-length hex. An event log carries its indexed arguments in
``topics`` (``topics[0]`` is the keccak-256 hash of the event's canonical
signature) and the rest in ``data``: one 32-byte big-endian word per value,
signed integers as two's complement over the whole word (an ``int24`` is
sign-extended to 256 bits).

The topic hashes are constants (keccak-256 of the events' Solidity signatures,
``Swap(address,uint256,uint256,uint256,uint256,address)`` for V2 and
``Swap(address,address,int256,int256,uint160,uint128,int24)`` for V3): the standard library has
no keccak-256 (``hashlib.sha3_256`` is the later NIST variant, a different
function), and a constant cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass

#: topic0 of Uniswap V2's ``Swap(address,uint256,uint256,uint256,uint256,address)``
SWAP_V2_TOPIC = "0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822"
#: topic0 of Uniswap V3's ``Swap(address,address,int256,int256,uint160,uint128,int24)``
SWAP_V3_TOPIC = "0xc42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67"
#: topic0 → the Uniswap version whose ``Swap`` it is
SWAP_TOPICS = {SWAP_V2_TOPIC: 2, SWAP_V3_TOPIC: 3}

_WORD_BITS = 256
_WORD_HEX = 64
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class AbiError(ValueError):
    """A hex value or an event's data is not what its type says; the message says what."""


# --- JSON-RPC hex forms ------------------------------------------------------------------
def quantity(text) -> int:
    """``"0x1b4"`` → 436: a JSON-RPC quantity (at most 256 bits)."""
    if not (isinstance(text, str) and text[:2] in ("0x", "0X") and 2 < len(text) <= 66
            and _HEX_DIGITS.issuperset(text[2:])):
        raise AbiError(f"not a hex quantity: {text!r:.80}")
    return int(text, 16)


def to_quantity(value: int) -> str:
    """436 → ``"0x1b4"`` (no leading zeros, as nodes send it)."""
    if value < 0:
        raise AbiError(f"a quantity cannot be negative: {value}")
    return hex(value)


def fixed_hex(text, nbytes: int) -> str:
    """A ``0x`` hex string of exactly ``nbytes`` bytes, lower-cased (hashes, addresses)."""
    if not (isinstance(text, str) and len(text) == 2 + 2 * nbytes and text[:2] in ("0x", "0X")
            and _HEX_DIGITS.issuperset(text[2:])):
        raise AbiError(f"not 0x and {2 * nbytes} hex digits: {text!r:.80}")
    return "0x" + text[2:].lower()


def hash32(text) -> str:
    """A block or transaction hash (32 bytes), lower-cased."""
    return fixed_hex(text, 32)


def address(text) -> str:
    """An account or contract address (20 bytes), lower-cased."""
    return fixed_hex(text, 20)


# --- ABI words ---------------------------------------------------------------------------
def words(data, count: int) -> list[int]:
    """The first ``count`` 32-byte words of an event's ``data``, as unsigned ints.

    Data longer than ``count`` words is accepted (an event may grow fields at
    the end); shorter data is an error.
    """
    if not (isinstance(data, str) and data[:2] in ("0x", "0X") and len(data) % 2 == 0
            and _HEX_DIGITS.issuperset(data[2:])):
        raise AbiError(f"event data is not 0x-prefixed hex: {data!r:.80}")
    have = (len(data) - 2) // _WORD_HEX
    if have < count:
        raise AbiError(f"event data holds {len(data) // 2 - 1} bytes; {count} words "
                       f"({count * 32} bytes) expected")
    return [int(data[2 + i * _WORD_HEX : 2 + (i + 1) * _WORD_HEX], 16) for i in range(count)]


def signed_fits(value: int, bits: int) -> int:
    """``value`` itself when it fits an ``int<bits>``, else an AbiError."""
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise AbiError(f"{value} does not fit int{bits}")
    return value


def as_signed(word: int, bits: int = _WORD_BITS) -> int:
    """A word read as a two's complement ``int<bits>``; the word must be its sign extension."""
    value = word - (1 << _WORD_BITS) if word >> (_WORD_BITS - 1) else word
    try:
        return signed_fits(value, bits)
    except AbiError:
        raise AbiError(f"word 0x{word:064x} is not a sign-extended int{bits}") from None


def as_unsigned(word: int, bits: int) -> int:
    """A word read as a ``uint<bits>``; the high bits must be zero."""
    if word >> bits:
        raise AbiError(f"word 0x{word:064x} does not fit uint{bits}")
    return word


def word_hex(value: int) -> str:
    """One word (64 hex digits, no prefix) for an int; negatives as two's complement."""
    if not -(1 << (_WORD_BITS - 1)) <= value < 1 << _WORD_BITS:
        raise AbiError(f"{value} does not fit a 256-bit word")
    return f"{value % (1 << _WORD_BITS):064x}"


def topic_address(topic) -> str:
    """The address in an indexed ``address`` topic (its low 20 bytes; the rest zero)."""
    word = int(hash32(topic), 16)
    if word >> 160:
        raise AbiError(f"topic {topic!r:.80} is not an address (its high 12 bytes are not zero)")
    return f"0x{word:040x}"


def address_topic(addr: str) -> str:
    """An address as an indexed topic: left-padded to 32 bytes."""
    return "0x" + address(addr)[2:].rjust(_WORD_HEX, "0")


# --- the Swap events ---------------------------------------------------------------------
@dataclass(frozen=True)
class V2Swap:
    """Uniswap V2 pair ``Swap``: what went in and came out of the pair, in token units."""

    sender: str
    to: str
    amount0_in: int
    amount1_in: int
    amount0_out: int
    amount1_out: int

    def deltas(self) -> tuple[int, int]:
        """The pool's balance changes (positive: into the pool), as V3 reports them."""
        return self.amount0_in - self.amount0_out, self.amount1_in - self.amount1_out


@dataclass(frozen=True)
class V3Swap:
    """Uniswap V3 pool ``Swap``: balance deltas (positive: into the pool) and the state after."""

    sender: str
    recipient: str
    amount0: int
    amount1: int
    sqrt_price_x96: int
    liquidity: int
    tick: int

    def deltas(self) -> tuple[int, int]:
        return self.amount0, self.amount1


def _two_addresses(topics) -> tuple[str, str]:
    if not isinstance(topics, list) or len(topics) < 3:
        raise AbiError("a Swap log has three topics: the event, then two indexed addresses")
    return topic_address(topics[1]), topic_address(topics[2])


def decode_swap(topics, data) -> V2Swap | V3Swap:
    """A Uniswap V2 or V3 ``Swap`` log, told apart by ``topics[0]``."""
    version = SWAP_TOPICS.get(topics[0].lower()) if isinstance(topics, list) and topics \
        and isinstance(topics[0], str) else None
    if version is None:
        raise AbiError(f"topic0 is not a Uniswap V2 or V3 Swap: {topics!r:.100}")
    first, second = _two_addresses(topics)
    if version == 2:
        return V2Swap(first, second, *words(data, 4))
    amount0, amount1, sqrt_price, liquidity, tick = words(data, 5)
    return V3Swap(first, second, as_signed(amount0), as_signed(amount1),
                  as_unsigned(sqrt_price, 160), as_unsigned(liquidity, 128), as_signed(tick, 24))


def encode_swap(swap: V2Swap | V3Swap) -> tuple[list[str], str]:
    """``(topics, data)`` of a ``Swap`` log, as a node sends them."""
    if isinstance(swap, V2Swap):
        topic0 = SWAP_V2_TOPIC
        values: tuple[int, ...] = (swap.amount0_in, swap.amount1_in, swap.amount0_out,
                                   swap.amount1_out)
        if min(values) < 0:
            raise AbiError("V2 amounts are uint256 and cannot be negative")
        first, second = swap.sender, swap.to
    else:
        topic0 = SWAP_V3_TOPIC
        signed_fits(swap.amount0, _WORD_BITS)
        signed_fits(swap.amount1, _WORD_BITS)
        as_unsigned(swap.sqrt_price_x96, 160)
        as_unsigned(swap.liquidity, 128)
        signed_fits(swap.tick, 24)
        values = (swap.amount0, swap.amount1, swap.sqrt_price_x96, swap.liquidity, swap.tick)
        first, second = swap.sender, swap.recipient
    topics = [topic0, address_topic(first), address_topic(second)]
    return topics, "0x" + "".join(word_hex(v) for v in values)
