"""A lake file is on disk before its name is, and its name before anything it replaces
goes: a power loss cannot leave a file that is not Parquet under a reader's name, nor
lose the files a compaction merged. Power loss cannot run here, so the order of the
system calls is what is checked (``os.fsync``, ``os.replace``, ``Path.unlink``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rtkit.lake.compact import compact
from rtkit.sinks.parquet import ParquetSink
from tests.test_lake_compact import small_lake, trade


def spy(monkeypatch) -> list[tuple[str, str]]:
    """Every fsync (with the path its descriptor names), rename and unlink, in order."""
    seen: list[tuple[str, str]] = []
    fsync, replace, unlink = os.fsync, os.replace, Path.unlink

    def spy_fsync(fd: int) -> None:
        fsync(fd)
        seen.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))

    def spy_replace(src, dst) -> None:
        replace(src, dst)
        seen.append(("replace", str(dst)))

    def spy_unlink(path: Path, missing_ok: bool = False) -> None:
        unlink(path, missing_ok=missing_ok)
        seen.append(("unlink", str(path)))

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    monkeypatch.setattr(Path, "unlink", spy_unlink)
    return seen


@pytest.fixture
def calls(monkeypatch) -> list[tuple[str, str]]:
    return spy(monkeypatch)


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_a_flushed_file_is_synced_before_its_rename_and_its_folder_after(tmp_path, calls):
    sink = ParquetSink(tmp_path / "lake")
    sink.open()
    sink.write([trade("BTC-USDT", i) for i in range(10)])
    [(op, final)] = [c for c in calls if c[0] == "replace"]
    at = calls.index((op, final))
    temporary = str(Path(final).with_name(f"_{Path(final).name}.tmp"))
    assert ("fsync", temporary) in calls[:at]
    assert ("fsync", str(Path(final).parent)) in calls[at + 1:]


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
def test_compaction_removes_its_inputs_only_once_the_merged_file_is_durable(tmp_path):
    lake = tmp_path / "lake"
    small_lake(lake, writers=1, flushes=3)
    with pytest.MonkeyPatch.context() as mp:
        seen = spy(mp)
        assert compact(lake).summary()["partitions_merged"] == 2
    removed = [i for i, (op, _) in enumerate(seen) if op == "unlink"]
    assert len(removed) == 6
    for folder in {Path(p).parent for op, p in seen if op == "unlink"}:
        merged = next(i for i, (op, p) in enumerate(seen)
                      if op == "replace" and Path(p).parent == folder)
        synced = next(i for i, c in enumerate(seen) if c == ("fsync", str(folder)) and
                      i > merged)
        first_removed = min(i for i in removed if Path(seen[i][1]).parent == folder)
        assert merged < synced < first_removed
