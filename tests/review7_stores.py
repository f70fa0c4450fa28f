"""A store type for tests/test_review7.py, importable by name in a writer process."""

import os

from rtkit.store import TickStore

#: the process that imported this first (the test's); a writer process inherits it
_PARENT = int(os.environ.setdefault("RTKIT_REVIEW7_PARENT", str(os.getpid())))


class ChildRefusedStore(TickStore):
    """Opens for writing in the test's process only: in a writer process, every open
    fails as one of a file that cannot be opened would (the child stays up)."""

    def __init__(self, path, **options) -> None:
        if not options.get("readonly") and os.getpid() != _PARENT:
            raise OSError("this file cannot be opened here")
        super().__init__(path, **options)
