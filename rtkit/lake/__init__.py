"""The Parquet lake: reading it, and keeping it compact (rtkit.lake.compact)."""
