"""An outside review's attacks on the CLI's lake commands: a wrong file is a message that
says what is wrong, never a traceback."""

from __future__ import annotations

import pytest

from rtkit.cli import main


@pytest.mark.parametrize("content", [b"garbage, not SQLite",
                                     b"SQLite format 3\x00" + b"\xff" * 200])
def test_export_of_a_file_that_is_not_a_database_says_so(tmp_path, capsys, content):
    db = tmp_path / "notes.sqlite"
    db.write_bytes(content)
    assert main(["export", str(db), "--lake", str(tmp_path / "lake")]) == 2
    err = capsys.readouterr().err
    assert str(db) in err and "not a database" in err
