"""A Uniswap pool as the user describes it, and its units: raw token amounts ↔ prices.

The chain knows neither token names nor decimals: a log says "the pool got
1500000000 of token0 and gave 500000000000000000 of token1". The user says
what token0 and token1 are, how many decimals each has, and which one is the
``BASE`` of the ``BASE-QUOTE`` symbol rtkit shows; from that a swap becomes a
trade: a price in quote per base, a volume in base, and the taker's side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from rtkit.onchain.abi import AbiError, address
from rtkit.validate import BUY, MAX_VALUE, SELL, Reject

_Q192 = 1 << 192
#: ERC-20 ``decimals`` is a uint8; real tokens use 0..24
_MAX_DECIMALS = 77


@dataclass(frozen=True)
class Pool:
    """One Uniswap V2 pair or V3 pool to collect.

    ``token0`` / ``token1``: your names for the pool's two tokens, in the
    pool's own order (the lower token address is token0: check the pool on a
    block explorer). ``decimals0`` / ``decimals1``: each token's ERC-20
    decimals. ``base``: which of the two is the symbol's BASE (default
    token0). ``venue``: the name its trades carry in ``df`` and in SQLite
    (default ``uniswap_v2`` / ``uniswap_v3``); give two pools of the same pair
    and version different venue names.

    Example, the USDC/WETH 0.05 % pool on mainnet as ``ETH-USDC``::

        Pool("0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640", token0="USDC", token1="ETH",
             decimals0=6, decimals1=18, version=3, base="ETH")
    """

    address: str
    token0: str
    token1: str
    decimals0: int
    decimals1: int
    version: int
    base: str | None = None
    venue: str | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "address", address(self.address))
        except AbiError:
            raise ValueError(f"pool address must be 0x and 40 hex digits (e.g. "
                             f"'0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640'), not "
                             f"{self.address!r}") from None
        names = []
        for field_name in ("token0", "token1"):
            name = getattr(self, field_name)
            if not (isinstance(name, str) and name.isalnum()):
                raise ValueError(f"{field_name} must be a token name in letters and digits "
                                 f"such as 'USDC' or 'ETH', not {name!r}")
            names.append(name.upper())
            object.__setattr__(self, field_name, name.upper())
        if names[0] == names[1]:
            raise ValueError(f"token0 and token1 are both {names[0]!r}; name the two tokens")
        for field_name in ("decimals0", "decimals1"):
            value = getattr(self, field_name)
            if not (type(value) is int and 0 <= value <= _MAX_DECIMALS):
                raise ValueError(f"{field_name} must be the token's ERC-20 decimals, an int "
                                 f"such as 18 or 6, not {value!r}")
        if self.version not in (2, 3):
            raise ValueError(f"version must be 2 (a Uniswap V2 pair) or 3 (a V3 pool), "
                             f"not {self.version!r}")
        base = names[0] if self.base is None else str(self.base).upper()
        if base not in names:
            raise ValueError(f"base must be token0 {names[0]!r} or token1 {names[1]!r}, "
                             f"not {self.base!r}")
        object.__setattr__(self, "base", base)
        venue = self.venue or f"uniswap_v{self.version}"
        if not (isinstance(venue, str) and venue.replace("_", "").replace("-", "").isalnum()):
            raise ValueError(f"venue must be a short name such as 'uniswap_v3', not {venue!r}")
        object.__setattr__(self, "venue", venue)

    # --- names --------------------------------------------------------------------------
    @property
    def base_index(self) -> int:
        """0 when the base is token0, else 1."""
        return 0 if self.base == self.token0 else 1

    @property
    def quote(self) -> str:
        return self.token1 if self.base_index == 0 else self.token0

    @property
    def symbol(self) -> str:
        """``BASE-QUOTE``, the symbol its trades carry."""
        return f"{self.base}-{self.quote}"

    def _decimals(self) -> tuple[int, int]:
        """(base decimals, quote decimals)."""
        if self.base_index == 0:
            return self.decimals0, self.decimals1
        return self.decimals1, self.decimals0

    # --- chain → trade (the collector) ------------------------------------------------
    def trade(self, amount0: int, amount1: int, sqrt_price_x96: int | None) -> tuple:
        """``(price, volume, side)`` of a swap from the pool's balance deltas.

        ``price`` is quote per base: from ``sqrt_price_x96`` (V3, the pool's
        price after the swap) or else from the amounts (V2, the swap's own
        average price). ``volume`` is the base amount; ``side`` is the
        taker's: base leaving the pool means the taker bought it.
        """
        base_dec, quote_dec = self._decimals()
        base_raw, quote_raw = (amount0, amount1) if self.base_index == 0 else (amount1, amount0)
        if base_raw == 0:
            raise Reject("non_positive", "swap moved no base token")
        volume = abs(base_raw) / 10**base_dec
        if sqrt_price_x96 is not None:
            price = self.price_from_sqrt_price_x96(sqrt_price_x96)
        elif quote_raw == 0:
            raise Reject("non_positive", "swap moved no quote token")
        else:
            price = abs(quote_raw) * 10**base_dec / (abs(base_raw) * 10**quote_dec)
        if not 0.0 < volume <= MAX_VALUE:
            raise Reject("out_of_range", f"volume={volume!r}")
        return price, volume, BUY if base_raw < 0 else SELL

    def price_from_sqrt_price_x96(self, sqrt_price_x96: int) -> float:
        """A V3 pool's ``sqrtPriceX96`` as quote per base, decimals applied.

        ``(sqrtPriceX96 / 2**96) ** 2`` is token1 per token0 in raw units;
        times ``10 ** (decimals0 - decimals1)`` in whole tokens. Computed on
        integers and divided once, so the float is correctly rounded.
        """
        if sqrt_price_x96 <= 0:
            raise Reject("non_positive", "sqrtPriceX96=0")
        top = sqrt_price_x96 * sqrt_price_x96 * 10**self.decimals0
        bottom = _Q192 * 10**self.decimals1
        price = top / bottom if self.base_index == 0 else bottom / top
        if not 0.0 < price <= MAX_VALUE:
            raise Reject("out_of_range", f"price={price!r} from sqrtPriceX96={sqrt_price_x96}")
        return price

    # --- trade → chain (the simulator) -------------------------------------------------
    def deltas_for(self, price: str, volume: str, side: str) -> tuple[int, int]:
        """The pool's ``(amount0, amount1)`` for a taker trading ``volume`` base at ``price``.

        ``price`` and ``volume`` are decimal text (exact); amounts round to the
        nearest raw unit.
        """
        base_dec, quote_dec = self._decimals()
        base_raw = round(Fraction(volume) * 10**base_dec)
        quote_raw = round(Fraction(volume) * Fraction(price) * 10**quote_dec)
        if side == "buy":  # the taker takes base out and pays quote in
            base_raw, quote_raw = -base_raw, quote_raw
        else:
            base_raw, quote_raw = base_raw, -quote_raw
        return (base_raw, quote_raw) if self.base_index == 0 else (quote_raw, base_raw)

    def sqrt_price_x96_for(self, price: str) -> int:
        """The V3 ``sqrtPriceX96`` at which the pool quotes ``price`` (quote per base)."""
        per_base = Fraction(price)
        token1_per_token0 = per_base if self.base_index == 0 else 1 / per_base
        raw = token1_per_token0 * Fraction(10) ** (self.decimals1 - self.decimals0)
        return math.isqrt(raw.numerator * _Q192 // raw.denominator)
