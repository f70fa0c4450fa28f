"""Module boundaries, read from the source: no import cycles, no borrowed private names.

The import graph is built with ``ast`` (nothing is imported), so a test failure names
the file and the line to change.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rtkit", "benchmarks")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES
            for p in sorted((ROOT / package).rglob("*.py"))}


MODULES = _sources()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(body: list[ast.stmt], lazy: bool = False
                  ) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with whether it runs later (inside a function) rather than
    when the module loads. ``if TYPE_CHECKING:`` blocks never run, so they are skipped."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, lazy
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield from _import_nodes(node.body, True)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _import_nodes(node.orelse, lazy)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    stmts = [c for c in children if isinstance(c, ast.stmt)]
                    stmts += [s for c in children if isinstance(c, (ast.ExceptHandler,
                                                                    ast.match_case))
                              for s in c.body]
                    yield from _import_nodes(stmts, lazy)


def _base(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from … import`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _edges(module: str) -> Iterator[tuple[str, bool, int, str | None]]:
    """(imported module of ours, lazy, line, name imported from it or None)."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    for node, lazy in _import_nodes(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    yield alias.name, lazy, node.lineno, None
            continue
        base = _base(module, node)
        for alias in node.names:
            if f"{base}.{alias.name}" in MODULES:  # a submodule
                yield f"{base}.{alias.name}", lazy, node.lineno, None
            elif base in MODULES:
                yield base, lazy, node.lineno, alias.name


GRAPH = {m: sorted({(t, lazy) for t, lazy, _, _ in _edges(m) if t != m}) for m in MODULES}


def _path(start: str, goal: str) -> list[str] | None:
    """A chain of imports (any kind) from ``start`` to ``goal``, or None."""
    came_from: dict[str, str | None] = {start: None}
    todo = [start]
    while todo:
        here = todo.pop()
        if here == goal:
            chain = [here]
            while came_from[chain[-1]] is not None:
                chain.append(came_from[chain[-1]])  # type: ignore[arg-type]
            return chain[::-1]
        for target, _ in GRAPH[here]:
            if target not in came_from:
                came_from[target] = here
                todo.append(target)
    return None


def test_graph_sees_the_imports_it_must():
    """The walk itself: a top-level, a lazy and a TYPE_CHECKING-only import are told apart."""
    assert ("rtkit.collector", False) in GRAPH["rtkit.group"]
    assert ("rtkit.widgets", True) in GRAPH["rtkit.collector"]  # panel(): ipywidgets on demand
    assert ("rtkit.store", False) in GRAPH["rtkit.widgets"]


def test_no_import_cycle_with_a_module_level_import():
    """No module reaches itself again through an import that runs when a module loads.

    A cycle made only of imports inside functions is allowed: neither module needs the
    other to load (``Collector.panel()`` loads the panel, the panel's Start builds a
    collector). A cycle with one module-level import in it is a knot: which side is
    half-built depends on which was imported first, and a lazy import at the other end
    only hides that (``analysis`` and ``spread`` were one: ``spread`` borrowed a helper
    from ``analysis``, which re-exported ``spread``).
    """
    knots = []
    for module, targets in GRAPH.items():
        for target, lazy in targets:
            if not lazy:
                back = _path(target, module)
                if back:
                    knots.append(" -> ".join([module, *back]))
    assert not knots, "import cycles (move the shared part to a module both import):\n" + \
        "\n".join(knots)


@pytest.mark.parametrize("module", ["rtkit.spread", "rtkit.analysis", "rtkit.widgets",
                                    "rtkit.collector", "rtkit.compat", "rtkit.typedefs"])
def test_module_imports_alone_in_a_fresh_interpreter(module):
    """Each once-tangled module loads first, on its own (its package's ``__init__`` aside)."""
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


#: Borrowed private names the lead removes after the arch-core merge: rtkit/onchain/store.py
#: is being reworked on another branch (sinks), which is where its SQL statements belong.
#: Every entry is (importing file, module, name); a new borrowing fails the test, and so
#: does an entry that is no longer needed (delete it then).
KNOWN_PRIVATE_IMPORTS: set[tuple[str, str, str]] = set()  # the on-chain store's went with kinds


def test_no_module_imports_another_modules_private_names():
    """``from rtkit.x import _y`` ties a module to another's internals: make ``y`` public
    in its home module (or move it where both belong) instead."""
    found = set()
    for module, path in MODULES.items():
        for target, _, line, name in _edges(module):
            if name and name.startswith("_") and not name.startswith("__") and target != module:
                found.add((str(path.relative_to(ROOT)), target, name, line))
    borrowed = {(f, t, n) for f, t, n, _ in found}
    new = sorted(f"{f}:{line}: from {t} import {n}" for f, t, n, line in found
                 if (f, t, n) not in KNOWN_PRIVATE_IMPORTS)
    assert not new, "private names imported across modules:\n" + "\n".join(new)
    stale = KNOWN_PRIVATE_IMPORTS - borrowed
    assert not stale, f"no longer borrowed; remove from KNOWN_PRIVATE_IMPORTS: {sorted(stale)}"


#: Mentions the lead replaces after the arch-core merge (those files are being reworked there):
#: (file, document).
KNOWN_MISSING_DOCUMENTS: set[tuple[str, str]] = set()  # the on-chain ones went with arch-core


def test_comments_refer_only_to_documents_in_the_repository():
    """A reader of the code has the repository, not the authors' notes: a comment that
    says "see VENUES.md" must say what that document said instead."""
    import re

    mention = re.compile(r"\b[A-Z][A-Z0-9_-]+\.md\b")  # DESIGN.md, PERFORMANCE-NOTES.md…
    paths = [p for d in ("rtkit", "tests", "benchmarks", "notebooks") for p in (ROOT / d).rglob("*")
             if p.suffix in (".py", ".ipynb")] + [ROOT / "Makefile", ROOT / "pyproject.toml"]
    found = set()
    for path in paths:
        if path == Path(__file__).resolve():  # this file names them to look for them
            continue
        for name in mention.findall(path.read_text()):
            if not list(ROOT.glob(f"**/{name}")):
                found.add((str(path.relative_to(ROOT)), name))
    assert not found - KNOWN_MISSING_DOCUMENTS, sorted(found - KNOWN_MISSING_DOCUMENTS)
    stale = KNOWN_MISSING_DOCUMENTS - found
    assert not stale, f"no longer mentioned; remove from KNOWN_MISSING_DOCUMENTS: {sorted(stale)}"
