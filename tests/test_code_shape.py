"""The rules for size that help a reader (README, "Layout"), held against the code.

A module owns one thing, named in the first line of its docstring; three or more modules of
one concern in a folder become a subpackage; a module past about 600 lines, or a function
whose body (from its first statement) is past 60, says why (a docstring paragraph starting
"Size:"). The field catalog is a data table, so it is exempt. Docstrings and comments cite
what ships with the code or Microsoft's pages, never files kept outside the repository.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import bulkpatch

PACKAGE = Path(bulkpatch.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
DATA_TABLES = {"catalog/fields.py"}  # the field table: a row per field, long by nature
MODULE_LINES, FUNCTION_LINES = 600, 60
OUTSIDE = re.compile(r"PRODUCT\.md|NOTES\.md|\.\./shared|/work/")


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _says_why(doc: str | None) -> bool:
    return bool(doc) and any(p.strip().startswith("Size:") for p in doc.split("\n\n"))


def test_every_module_names_what_it_owns_in_its_first_line():
    missing = [
        _name(p)
        for p in MODULES
        if not (ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) or "").strip()
    ]
    assert missing == []


def test_a_long_module_or_function_says_why():
    unexplained = []
    for path in MODULES:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        lines = len(text.splitlines())
        if (
            lines > MODULE_LINES
            and _name(path) not in DATA_TABLES
            and not _says_why(ast.get_docstring(tree))
        ):
            unexplained.append(f"{_name(path)}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                # The body from its first statement: a signature that spells out every keyword
                # (the public functions') is what a reader wants, not length to explain.
                body = (
                    node.body[1:] if ast.get_docstring(node) and len(node.body) > 1 else node.body
                )
                length = (node.end_lineno or node.lineno) - body[0].lineno + 1
                if length > FUNCTION_LINES and not _says_why(ast.get_docstring(node)):
                    unexplained.append(f"{_name(path)}:{node.lineno} {node.name}: {length} lines")
    assert unexplained == []


def test_three_modules_of_one_concern_make_a_subpackage():
    crowded = []
    for folder in {p.parent for p in MODULES}:
        prefixes = Counter(
            p.stem.split("_")[0] for p in folder.glob("*.py") if "_" in p.stem.strip("_")
        )
        crowded += [f"{_name(folder / k)}_*" for k, n in prefixes.items() if n >= 3]
    assert crowded == []


def test_the_code_cites_nothing_kept_outside_the_repository():
    cited = [
        f"{_name(p)}:{n}"
        for p in MODULES
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert cited == []
