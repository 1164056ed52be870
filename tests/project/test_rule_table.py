"""docs/PROTOCOL.md's table of each rule, its code and its tests stays whole: every rule the
document states has a row, every file of the core it names exists, and every test it names
exists and cites the rule it stands for."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = (ROOT / "docs" / "PROTOCOL.md").read_text()
RULE = re.compile(r"^- \*\*(R\d+[a-e]?) —", re.M)


def table() -> dict[str, tuple[str, str]]:
    """rule -> (code, tests), from the rows of the table."""
    start = PROTOCOL.index("## Each rule, its code and its tests")
    rows = {}
    for line in PROTOCOL[start:].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| R") and len(cells) == 4:
            rows[cells[0]] = (cells[2], cells[3])
        elif rows and not line.startswith("|"):
            break
    return rows


def named_tests(cell: str) -> list[tuple[str, str]]:
    """(file, test) pairs of a cell written as `file: `test`, `test`; file: ...`."""
    pairs = []
    for part in cell.split(";"):
        module, _, names = part.partition(":")
        pairs += [(module.strip(), name) for name in re.findall(r"`(test_\w+)`", names)]
    return pairs


def module_path(module: str) -> Path | None:
    """The one test module of that name, in whichever folder under tests/, or None."""
    found = sorted(path.relative_to(ROOT) for path in (ROOT / "tests").rglob(f"{module}.py"))
    assert len(found) <= 1, f"{module} names several test files: {[str(path) for path in found]}"
    return found[0] if found else None


def source_of(module: str, name: str) -> str | None:
    """A test's source with the comment lines just above it, or None if there is none."""
    path = module_path(module)
    if path is None:
        return None
    source = (ROOT / path).read_text()
    lines = source.splitlines()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            above = first
            while above > 0 and lines[above - 1].lstrip().startswith("#"):
                above -= 1
            return "\n".join(lines[above : node.end_lineno])
    return None


def test_every_rule_has_a_row_with_code_and_tests() -> None:
    rules = RULE.findall(PROTOCOL)
    rows = table()
    assert len(rules) >= 27, "the rules were not found where the document states them"
    assert sorted(rows) == sorted(rules), "the table and the rules differ"
    for rule, (code, tests) in rows.items():
        assert code and named_tests(tests), f"{rule}: a row needs its code and at least one test"


def test_the_files_of_the_core_named_exist() -> None:
    for rule, (code, _) in table().items():
        for path in re.findall(r"`((?:gossip|node|simulations)/[\w/]+\.py)`", code):
            assert (ROOT / path).exists(), f"{rule}: {path} does not exist"


def test_every_test_named_exists_and_cites_its_rule() -> None:
    for rule, (_, tests) in table().items():
        for module, name in named_tests(tests):
            text = source_of(module, name)
            assert text is not None, f"{rule}: no test {name} in a test file {module}.py under tests/"
            assert re.search(rf"\b{rule}\b", text), f"{rule}: {module_path(module)}::{name} does not cite it"


def _defined_names() -> set[str]:
    """Every function, class, method and assigned name in the code the table can name."""
    names: set[str] = set()
    for package in ("gossip", "node", "simulations"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    names.add(node.name)
                elif isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Store):
                    names.add(node.id if isinstance(node, ast.Name) else node.attr)
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    names.add(node.target.id)
    return names


def test_the_code_named_exists() -> None:
    """Each name in a code cell (`Class.method`, `function`, a field) is defined in the
    code: a split or a rename that leaves the table behind fails here."""
    defined = _defined_names()
    for rule, (code, _) in table().items():
        for token in re.findall(r"`([^`]+)`", code):
            if "/" in token or not re.fullmatch(r"[A-Za-z_][\w.]*", token):
                continue  # a file, checked above, or an expression
            for part in token.split("."):
                assert part in defined, f"{rule}: `{token}` names {part}, defined nowhere in the code"
