"""The storage-fault and unstorable-row tests again, with every collector's writer a
process (``writer="process"`` as the default): the same promises hold for both writers."""

from __future__ import annotations

import pytest

from rtkit.runtime import writer_process
from tests.test_storage_faults import *  # noqa: F403  (collected again here)
from tests.test_unstorable import *  # noqa: F403


@pytest.fixture(autouse=True)
def process_writer_by_default(monkeypatch):
    monkeypatch.setattr(writer_process, "DEFAULT_WRITER", "process")
