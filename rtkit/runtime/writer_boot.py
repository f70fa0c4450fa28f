"""The first code a writer process runs: rtkit's writing modules, not the package's __init__.

Importing :mod:`rtkit.runtime.writer_child` the usual way first runs
``rtkit/__init__.py``, which imports the collector, pandas and the rest: about
half a second (seconds on a busy machine) before the child can take the run
over, while the collector's process writes every flush itself (issue 17). This
file is run by its path (:data:`rtkit.runtime.writer_child._CHILD_CODE`), not as
part of the package: it registers the ``rtkit`` package without running its
``__init__`` — run after all, and only then, if some module asks the package for
a name it defines (a store type's module doing ``from rtkit import TickStore``) —
and runs :func:`rtkit.runtime.writer_child.main`, which imports only what writing
takes (sqlite3 and the kinds' schema; no pandas, and sqlite-utils only if the
file lacks a table: :func:`rtkit.kinds.sql.database`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path


def register_package(root: Path) -> None:
    """Make ``root/rtkit`` the ``rtkit`` package, its ``__init__`` run on the first
    name asked of it (a submodule's import asks none)."""
    spec = importlib.util.spec_from_file_location(
        "rtkit", root / "rtkit" / "__init__.py", submodule_search_locations=[str(root / "rtkit")])
    assert spec is not None and spec.loader is not None  # a file path always has both
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def __getattr__(name: str):
        # once only: a name asked while the __init__ runs is missing, as in any import
        package.__dict__.pop("__getattr__", None)
        loader.exec_module(package)
        return getattr(package, name)

    package.__dict__["__getattr__"] = __getattr__
    sys.modules["rtkit"] = package


def boot(argv: list[str]) -> None:
    """Register the package this file belongs to, first on the path, and serve."""
    root = Path(__file__).resolve().parents[2]  # the folder holding rtkit/
    sys.path.insert(0, str(root))
    if "rtkit" not in sys.modules:
        register_package(root)
    from rtkit.runtime.writer_child import main

    main(argv)


if __name__ == "__main__":
    boot(sys.argv[1:])
