"""Plug-in discovery shared by the venue adapters and the simulator dialects.

Every module of a package that defines the named dict (``ADAPTERS``,
``DIALECTS``) contributes its entries: adding a venue is adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


class Registry:
    """Name → class, filled on first use from a package's modules."""

    def __init__(self, package: ModuleType | str, attribute: str, what: str) -> None:
        self._package = package
        self._attribute = attribute
        self._what = what
        self._entries: dict[str, type] = {}

    def entries(self) -> dict[str, type]:
        if not self._entries:
            package = importlib.import_module(self._package) if isinstance(
                self._package, str) else self._package
            for info in pkgutil.iter_modules(package.__path__):
                if info.name != "base":
                    module = importlib.import_module(f"{package.__name__}.{info.name}")
                    self._entries.update(getattr(module, self._attribute, {}))
        return self._entries

    def names(self) -> list[str]:
        return sorted(self.entries())

    def create(self, name: str, **options):
        cls = self.entries().get(name.lower() if isinstance(name, str) else name)
        if cls is None:
            raise ValueError(f"unknown {self._what} {name!r}; choose one of: "
                             f"{', '.join(self.names())}")
        return cls(**options)
