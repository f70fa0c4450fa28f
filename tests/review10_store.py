"""A store type for tests/test_review10.py: in a writer process, the first flush's third
statement of trades fails as a database error would (after two parts are in), once."""

import sqlite3

from rtkit.store import TickStore


class FailsInThirdPartOnce(TickStore):
    """A TickStore whose third insert of trades in its process raises, once; ``write`` is
    TickStore's, so the child streams a flush's parts into it."""

    calls = 0

    def insert_rows(self, sql, rows, table, refused):
        if table == "ticks" and rows:
            FailsInThirdPartOnce.calls += 1
            if FailsInThirdPartOnce.calls == 3:
                raise sqlite3.OperationalError("disk I/O error")
        return super().insert_rows(sql, rows, table, refused)
