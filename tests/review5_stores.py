"""A store type for tests/test_review5_pipe.py, importable by a writer process: its
SQLite stalls (as on a disk that stops answering) once a flush's first trades are in."""

import os
import time

from rtkit.store import TickStore

#: the environment variable naming the file whose creation ends the stall
STALL_FILE = "RTKIT_TEST_STALL_FILE"
#: the longest stall, so that a test without the fix still ends
STALL_MOST_S = 30.0


class StallingStore(TickStore):
    """Inserts a flush's first trades, then stalls once (until the file named by
    STALL_FILE exists, STALL_MOST_S at most) before the next part."""

    _parts_seen = 0

    def insert_rows(self, sql, rows, table, refused):
        if table == "ticks":
            self._parts_seen += 1
            release = os.environ.get(STALL_FILE)
            deadline = time.monotonic() + STALL_MOST_S
            while (self._parts_seen == 2 and release and not os.path.exists(release)
                   and time.monotonic() < deadline):
                time.sleep(0.01)
        return super().insert_rows(sql, rows, table, refused)
