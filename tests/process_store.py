"""A store type whose module asks the ``rtkit`` package for a name, for
tests/test_writer_process.py: in a writer process, whose bootstrap leaves the package's
``__init__`` unrun, the name is there all the same."""

import rtkit


class PackageNamedStore(rtkit.TickStore):
    """A TickStore, reached as ``rtkit.TickStore``."""
