"""An outside review's attacks on the lake: a file that is not whole (a power loss after
the rename, a stray copy) or of another schema version is named and left alone by
compaction, never a crash that leaves the whole lake uncompacted, nor a column lost."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rtkit.cli import main
from rtkit.lake.compact import compact
from rtkit.lake.read import read
from tests.test_lake_compact import age, small_lake
from tests.test_lake_writers import lake_files, lake_rows


def spoil(lake, how: str):
    """One file of the lake spoiled ``how``; returns it."""
    first = sorted(lake_files(lake))[0]
    table = pq.read_table(first)
    if how == "garbage":
        first.write_bytes(b"not a parquet file at all")
    elif how == "empty":  # a rename persisted before the data: a power loss
        first.write_bytes(b"")
    elif how == "older":  # written before the kind had its last column
        pq.write_table(table.drop_columns(["side"]), first)
    elif how == "newer":  # a later rtkit's column this one does not know
        pq.write_table(table.append_column("venue_seq", pa.array(range(table.num_rows))), first)
    age(lake_files(lake))
    return first


@pytest.mark.parametrize("how", ["garbage", "empty"])
def test_compaction_names_a_file_it_cannot_read_and_compacts_the_rest(tmp_path, how, capsys):
    lake = tmp_path / "lake"
    small_lake(lake)
    bad = spoil(lake, how)
    good = {f for f in lake_files(lake) if f != bad}
    ids_of_good = {i for f in good if f.parent == bad.parent
                   for i in pq.read_table(f).column("trade_id").to_pylist()}
    assert main(["lake", "compact", str(lake), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["partitions_merged"] == 2  # its partition too, without it
    assert [u["file"] for u in summary["unreadable"]] == [str(bad)]
    assert "Parquet" in summary["unreadable"][0]["why"]
    assert bad.exists()  # left where it is, for the user to look at
    merged = [f for f in lake_files(lake) if f.parent == bad.parent and f != bad]
    assert len(merged) == 1
    # every record of the good files of that partition is in its merged file, once
    merged_ids = pq.read_table(merged[0]).column("trade_id").to_pylist()
    assert sorted(merged_ids) == sorted(ids_of_good)
    main(["lake", "compact", str(lake), "--min-age", "0"])
    assert "1 file could not be read" in capsys.readouterr().out


def test_read_of_a_lake_with_a_spoiled_file_names_it_and_says_what_to_do(tmp_path):
    lake = tmp_path / "lake"
    small_lake(lake)
    bad = spoil(lake, "empty")
    with pytest.raises(ValueError, match="move it aside") as info:
        read(lake)
    assert str(bad) in str(info.value)


def test_compaction_merges_a_file_of_an_older_schema_as_readers_read_it(tmp_path):
    lake = tmp_path / "lake"
    small_lake(lake)
    spoil(lake, "older")
    before = read(lake)
    report = compact(lake)
    assert not report.unreadable and len(report.merged) == 2
    after = read(lake)
    assert before.equals(after)


def test_compaction_leaves_a_file_with_columns_it_does_not_know(tmp_path):
    """Merging a later rtkit's file would drop its new column without a word."""
    lake = tmp_path / "lake"
    small_lake(lake)
    newer = spoil(lake, "newer")
    raw, before = lake_rows(lake)
    report = compact(lake)
    assert newer.exists() and "venue_seq" in pq.read_schema(newer).names
    assert [u["file"] for u in report.summary()["unreadable"]] == [str(newer)]
    assert "venue_seq" in report.unreadable[0][1]
    assert lake_rows(lake)[1] == before
