"""Review of the lake's durable writes: a file is synced through a descriptor that may
write to it. POSIX syncs a read-only one as well, but Windows' FlushFileBuffers (behind
``os.fsync`` there) refuses a handle without write access, so a read-only sync would fail
every lake write there (WebAssembly/wasi-filesystem#89, infretis/infretis#205). Windows
cannot run here: its rule is played by a stand-in for ``os.fsync``."""

from __future__ import annotations

import errno
import fcntl
import os
import stat

from rtkit.sinks.parquet import ParquetSink
from tests.test_lake_compact import trade


def test_a_lake_file_is_synced_through_a_handle_that_may_write(tmp_path, monkeypatch):
    fsync = os.fsync

    def windows_fsync(fd: int) -> None:
        read_only = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
        if read_only and stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EBADF, "Bad file descriptor")
        fsync(fd)

    monkeypatch.setattr(os, "fsync", windows_fsync)
    sink = ParquetSink(tmp_path / "lake")
    sink.open()
    assert sink.write([trade("BTC-USDT", i) for i in range(10)]) == 10
    assert len(list((tmp_path / "lake").rglob("part-*.parquet"))) == 1
