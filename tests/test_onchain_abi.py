"""Uniswap Swap ABI and pool units, checked against values computed by hand.

Every hex word below was written out by hand (the arithmetic is in the
comments), not produced by rtkit's encoder, so encoder and decoder are both
held to the same independent numbers.
"""

import pytest

from rtkit.onchain import abi
from rtkit.onchain.pools import Pool
from rtkit.validate import BUY, SELL, Reject

# keccak-256 of the canonical signatures (Swap(address,uint256,uint256,uint256,uint256,address)
# of a Uniswap V2 pair, Swap(address,address,int256,int256,uint160,uint128,int24) of a V3
# pool), typed in again here
V2_TOPIC = "0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822"
V3_TOPIC = "0xc42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67"
ROUTER = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d"
WALLET = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
TOPIC_ROUTER = "0x000000000000000000000000" + ROUTER[2:]
TOPIC_WALLET = "0x000000000000000000000000" + WALLET[2:]
ZERO = "0" * 64
FF = "f" * 56  # the top 28 bytes of a small negative number's word

# V2: 1.5 ETH in (amount1In), 3000 USDC out (amount0Out)
#   1.5e18 = 0x14d1120d7b160000 (1e18 = 0xde0b6b3a7640000, times 1.5)
#   3e9    = 0xb2d05e00         (1e9 = 0x3b9aca00, times 3)
V2_DATA = ("0x" + ZERO
           + "14d1120d7b160000".rjust(64, "0")
           + "b2d05e00".rjust(64, "0")
           + ZERO)

# V3: amount0 = -1e9 (1000 USDC out of the pool): 2**256 - 0x3b9aca00, whose low
#     word is 0x100000000 - 0x3b9aca00 = 0xc4653600, all higher bits set
#     amount1 = 5e17 (0.5 ETH in) = 0x6f05b59d3b20000
#     sqrtPriceX96 = 2**110 = 0x4 followed by 27 hex zeros (110 = 2 + 4 * 27)
#     liquidity = 1e18 = 0xde0b6b3a7640000
#     tick = -197432: 197432 = 0x30338, so the low word is 0xffffffff - 0x30338 + 1
#            = 0xfffcfcc8, sign-extended
V3_DATA = ("0x" + FF + "c4653600"
           + "6f05b59d3b20000".rjust(64, "0")
           + ("4" + "0" * 27).rjust(64, "0")
           + "de0b6b3a7640000".rjust(64, "0")
           + FF + "fffcfcc8")

USDC_ETH = dict(token0="USDC", token1="ETH", decimals0=6, decimals1=18, base="ETH")
POOL_V3 = Pool("0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640", version=3, **USDC_ETH)
POOL_V2 = Pool("0xb4e16d0168e52d35cacd2c6185b44281ec28c9dc", version=2, **USDC_ETH)


def test_topic_constants_are_the_keccak_hashes_of_the_swap_signatures():
    assert abi.SWAP_V2_TOPIC == V2_TOPIC
    assert abi.SWAP_V3_TOPIC == V3_TOPIC


@pytest.mark.parametrize("text, value", [("0x0", 0), ("0x1b4", 436), ("0X1B4", 436),
                                         ("0x1348c9", 1_263_817), ("0x56ffeff8", 1_459_613_688)])
def test_quantities(text, value):
    assert abi.quantity(text) == value


@pytest.mark.parametrize("text", ["0x", "1b4", "0xg1", 436, None, "0x" + "1" * 65])
def test_bad_quantities_are_refused(text):
    with pytest.raises(abi.AbiError):
        abi.quantity(text)


def test_v2_swap_decodes_to_the_hand_computed_amounts():
    swap = abi.decode_swap([V2_TOPIC, TOPIC_ROUTER, TOPIC_WALLET], V2_DATA)
    assert swap == abi.V2Swap(ROUTER, WALLET, 0, 1_500_000_000_000_000_000, 3_000_000_000, 0)
    assert swap.deltas() == (-3_000_000_000, 1_500_000_000_000_000_000)


def test_v3_swap_decodes_signed_amounts_and_negative_tick():
    swap = abi.decode_swap([V3_TOPIC, TOPIC_ROUTER, TOPIC_WALLET], V3_DATA)
    assert swap == abi.V3Swap(ROUTER, WALLET, -1_000_000_000, 500_000_000_000_000_000,
                              2**110, 10**18, -197_432)


def test_encoder_writes_the_hand_computed_words():
    v2 = abi.V2Swap(ROUTER, WALLET, 0, 1_500_000_000_000_000_000, 3_000_000_000, 0)
    v3 = abi.V3Swap(ROUTER, WALLET, -1_000_000_000, 500_000_000_000_000_000, 2**110, 10**18,
                    -197_432)
    assert abi.encode_swap(v2) == ([V2_TOPIC, TOPIC_ROUTER, TOPIC_WALLET], V2_DATA)
    assert abi.encode_swap(v3) == ([V3_TOPIC, TOPIC_ROUTER, TOPIC_WALLET], V3_DATA)


def test_extreme_signed_words():
    # int256 min is 0x8000…0; -1 is all ones
    assert abi.as_signed(int("8" + "0" * 63, 16)) == -(2**255)
    assert abi.as_signed(int("f" * 64, 16)) == -1
    assert abi.word_hex(-1) == "f" * 64
    assert abi.word_hex(-(2**255)) == "8" + "0" * 63


@pytest.mark.parametrize("data, problem", [
    (V3_DATA[:-64], "holds 128 bytes"),                                  # four words, not five
    (V3_DATA[:-64] + "0" * 58 + "800000", "not a sign-extended int24"),  # 2**23: past int24
    (V3_DATA[:130] + "1" + "0" * 63 + V3_DATA[194:], "does not fit uint160"),
    ("0xzz", "not 0x-prefixed hex"),
])
def test_malformed_v3_data_is_an_abi_error(data, problem):
    with pytest.raises(abi.AbiError, match=problem):
        abi.decode_swap([V3_TOPIC, TOPIC_ROUTER, TOPIC_WALLET], data)


def test_topics_must_be_a_swap_with_address_topics():
    with pytest.raises(abi.AbiError, match="not a Uniswap"):
        abi.decode_swap(["0x" + "1" * 64, TOPIC_ROUTER, TOPIC_WALLET], V2_DATA)
    with pytest.raises(abi.AbiError, match="not an address"):
        abi.decode_swap([V2_TOPIC, "0x1" + "0" * 63, TOPIC_WALLET], V2_DATA)
    with pytest.raises(abi.AbiError, match="three topics"):
        abi.decode_swap([V2_TOPIC], V2_DATA)


def test_v3_price_from_sqrt_price_x96_with_decimals():
    # (2**110 / 2**96)**2 = 2**28 raw token1 (ETH) per raw token0 (USDC);
    # whole tokens: 2**28 * 10**(6 - 18) ETH per USDC, so per ETH:
    # 10**12 / 2**28 = 5**12 / 2**16 = 244140625 / 65536 = 3725.2902984619140625 USDC
    assert POOL_V3.price_from_sqrt_price_x96(2**110) == 3725.2902984619140625
    # the same pair with ETH as token0: sqrtPriceX96 = 2**82 gives 2**-28 raw,
    # times 10**(18 - 6): the same 10**12 / 2**28
    eth_usdc = Pool("0x" + "1" * 40, token0="ETH", token1="USDC", decimals0=18, decimals1=6,
                    version=3)
    assert eth_usdc.price_from_sqrt_price_x96(2**82) == 3725.2902984619140625


def test_swaps_become_trades():
    v3 = abi.decode_swap([V3_TOPIC, TOPIC_ROUTER, TOPIC_WALLET], V3_DATA)
    # the pool got 0.5 ETH: the taker sold the base; V3's price is the pool's after the swap
    assert POOL_V3.trade(*v3.deltas(), v3.sqrt_price_x96) == (3725.2902984619140625, 0.5, SELL)
    v2 = abi.decode_swap([V2_TOPIC, TOPIC_ROUTER, TOPIC_WALLET], V2_DATA)
    # 3000 USDC for 1.5 ETH: 2000 USDC per ETH, the taker sold ETH
    assert POOL_V2.trade(*v2.deltas(), None) == (2000.0, 1.5, SELL)
    # the other way round: 0.25 ETH out of the pool for 500 USDC in, a buy at 2000
    assert POOL_V2.trade(500_000_000, -250_000_000_000_000_000, None) == (2000.0, 0.25, BUY)


def test_a_swap_without_base_is_rejected_not_raised():
    with pytest.raises(Reject) as exc:
        POOL_V2.trade(5, 0, None)
    assert exc.value.reason == "non_positive"
    with pytest.raises(Reject):
        POOL_V3.trade(1, 1, 0)


def test_simulator_direction_round_trips_through_the_decoder():
    amount0, amount1 = POOL_V3.deltas_for("3200.5", "0.25", "buy")
    assert (amount0, amount1) == (800_125_000, -250_000_000_000_000_000)
    sqrt_price = POOL_V3.sqrt_price_x96_for("3200.5")
    price, volume, side = POOL_V3.trade(amount0, amount1, sqrt_price)
    assert price == pytest.approx(3200.5, rel=1e-12) and (volume, side) == (0.25, BUY)


@pytest.mark.parametrize("options, problem", [
    (dict(address="0x123"), "40 hex digits"),
    (dict(token1="USDC"), "name the two tokens"),
    (dict(base="BTC"), "base must be token0"),
    (dict(decimals0=-1), "ERC-20 decimals"),
    (dict(version=4), "version must be 2"),
])
def test_pool_refuses_bad_descriptions_and_says_what_to_do(options, problem):
    fields = dict(address=POOL_V3.address, version=3, **USDC_ETH) | options
    with pytest.raises(ValueError, match=problem):
        Pool(**fields)


def test_pool_names():
    assert (POOL_V3.symbol, POOL_V3.venue, POOL_V3.quote) == ("ETH-USDC", "uniswap_v3", "USDC")
    assert Pool(POOL_V3.address.upper().replace("0X", "0x"), version=3, **USDC_ETH) == POOL_V3
