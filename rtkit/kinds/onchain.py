"""The on-chain kinds: block heads and Uniswap swaps (``rtkit.onchain``).

``blocks``: every header the node announced; after a reorg several rows share
a ``number``. ``swaps``: one row per swap log as the node last told it; amounts
that can exceed 64 bits are exact decimal TEXT; ``timestamp`` is the block's
time (NULL until its header arrives). Continuity: none of its own — a reorg
is told by the node (``removed: true``) and applied by the chain pipeline.
"""

from __future__ import annotations

from rtkit.kinds import UTC_NS, Column, Kind, event_times, venue_symbol

BLOCKS = Kind(
    name="blocks",
    table="blocks",
    columns=(
        Column("hash", "TEXT", "object"),
        Column("number", "INTEGER", "int64", not_null=True),
        Column("parent_hash", "TEXT", "object", not_null=True),
        Column("timestamp", "INTEGER", UTC_NS, not_null=True),
        Column("base_fee", "INTEGER", "object"),
        Column("gas_used", "INTEGER", "int64"),
        Column("received_at", "INTEGER", UTC_NS, not_null=True),
    ),
    key=("hash",),
    indexes=(("number",),),
    counters=("blocks", "blocks_stored", "block_duplicates", "blocks_pending"),
    doc="a block header as the node announced it",
)

SWAPS = Kind(
    name="swaps",
    table="swaps",
    columns=(
        Column("tx_hash", "TEXT", "object"),
        Column("log_index", "INTEGER", "int64"),
        Column("block_number", "INTEGER", "int64", not_null=True),
        Column("block_hash", "TEXT", "object", not_null=True),
        *event_times(ring=False, timestamp_required=False),  # NULL until its header comes
        *venue_symbol(ring=False),
        Column("pool", "TEXT", "object", not_null=True),
        Column("version", "INTEGER", "int64", not_null=True),
        Column("sender", "TEXT", "object"),
        Column("recipient", "TEXT", "object"),
        Column("amount0", "TEXT", "object", not_null=True),
        Column("amount1", "TEXT", "object", not_null=True),
        Column("sqrt_price_x96", "TEXT", "object"),
        Column("liquidity", "TEXT", "object"),
        Column("tick", "INTEGER", "Int64"),
        Column("price", "REAL", "float64", not_null=True),
        Column("volume", "REAL", "float64", not_null=True),
        Column("side", "TEXT", "category", not_null=True),
    ),
    key=("tx_hash", "log_index"),
    indexes=(("block_hash",), ("venue", "symbol", "timestamp")),
    counters=("ticks", "stored", "duplicates", "pending"),  # swaps are the chain's trades
    doc="a Uniswap swap log, as the node last told it",
)

KINDS = {"blocks": BLOCKS, "swaps": SWAPS}
