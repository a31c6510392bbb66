"""The layout's one rule: dependencies run one way, down the stages (README, "Layout").

Every `import` and `from ... import` in the package, at any depth (function bodies and
TYPE_CHECKING blocks too: a wrong-way arrow there is still a dependency a reader must follow),
is held against the stages' order.
"""

from __future__ import annotations

import ast
from pathlib import Path

import bulkpatch

PACKAGE = Path(bulkpatch.__file__).parent
# Lowest first. A module may import its own stage and the stages before it, never after.
# `shared` is the top of the package: the public API's plain parts, errors, settings, the
# outcome vocabulary and the safe-write rules every stage uses, and `portable`, the calls that
# differ between POSIX and Windows (locks for runs, Ctrl-C for apply, private files for
# sign-in, a port of its own for the page and the sandbox): stages from the network to the
# page need it, so it sits below them all, and it imports nothing of bulkpatch.
# `match` finds the ids of rows that name their customer and subscription by name: it takes a
# checked sheet and frames of what was read (the reading is the network side's, above it), and
# gives plan a sheet with ids, so it sits between check and plan and imports no network.
ORDER = [
    "shared",
    "catalog",
    "load",
    "check",
    "match",
    "plan",
    "sandbox",
    "network",
    "apply",
    "report",
    "runs",
    "controls",  # approval and audit: they read run folders and report words; commands use them
    "export",
    "commands",
    "ui",
    "cli",
]
SHARED = {"errors", "settings", "outcomes", "safe", "portable"}


def stage(module: str) -> str:
    """The stage a dotted module name (below `bulkpatch`) belongs to."""
    first = module.split(".")[0]
    if first in SHARED or first == "":
        return "shared"
    return first


def imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "bulkpatch":
                found += [(node.lineno, a.name) for a in node.names if a.name != "__version__"]
            elif node.module.startswith("bulkpatch."):
                found.append((node.lineno, node.module.removeprefix("bulkpatch.")))
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, a.name.removeprefix("bulkpatch."))
                for a in node.names
                if a.name.startswith("bulkpatch.")
            ]
    return found


def arrows() -> list[str]:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        here = ".".join(rel.parts)
        if here in ("__init__", "__main__"):
            continue  # the public API and `python -m`: the faces above every stage
        mine = stage(here)
        for line, there in imports(path):
            theirs = stage(there)
            if ORDER.index(theirs) > ORDER.index(mine):
                wrong.append(f"bulkpatch/{rel}.py:{line} ({mine}) imports {there} ({theirs})")
    return wrong


def test_no_stage_imports_a_stage_above_it():
    assert arrows() == []
