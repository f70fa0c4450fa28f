"""`make lint` type-checks rtkit/ with mypy, and the declared types (rtkit.typedefs)
catch what they were declared for."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="mypy comes with the dev extra: pip install -e '.[dev]'")

ROOT = Path(__file__).resolve().parents[1]


def mypy(*args: str, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(cache), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_make_lint_runs_mypy_over_rtkit():
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe and "-m ruff check" in recipe.group(1) and "-m mypy" in recipe.group(1)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["files"] == ["rtkit"] and not config.get("strict")


def test_rtkit_passes_mypy(tmp_path):
    done = mypy(cache=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_misspelt_reason_status_stats_key_or_control_kind_is_a_type_error(tmp_path):
    snippet = tmp_path / "misspelt.py"
    snippet.write_text(
        "from rtkit.typedefs import CollectorStats, StatusState\n"
        "from rtkit.validate import Reject\n"
        "Reject('bad_numbr')\n"
        "state: StatusState = 'lve'\n"
        "def stored(stats: CollectorStats) -> int:\n"
        "    return stats['stord']\n"
        "from rtkit.venues.base import Control\n"
        "Control('ak')\n")
    done = mypy(str(snippet), cache=tmp_path / "cache")
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert [int(line.split(":")[1]) for line in errors] == [3, 4, 6, 8], done.stdout


def test_waiting_for_all_trades_of_an_endless_simulator_says_what_to_do():
    """Found by mypy: ``count=None`` made wait_generated() compare an int with None."""
    from rtkit.sim import Simulator

    with pytest.raises(ValueError, match=r"wait_generated\(1000\)"):
        Simulator("binance", count=None).wait_generated()
