"""The runtime's structure, checked from its source: no import cycles, SQL only in store/, small modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import RUNTIME_PARENT

DURABLE = RUNTIME_PARENT / "durable"
MAX_LINES = 520  # "none over about 500 lines"


def _modules() -> dict[str, Path]:
    """Every module of durable/, by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(DURABLE.rglob("*.py")):
        parts = list(path.relative_to(RUNTIME_PARENT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The durable modules ``name`` imports: every Import/ImportFrom, inside functions and TYPE_CHECKING too."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:  # `from . import x` imports the submodule x, not the package
                submodule = f"{module}.{alias.name}"
                targets.add(submodule if submodule in modules else module)
    return {target for target in targets if target in modules and target != name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the path that closes it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return None


def test_the_import_graph_is_read_from_the_source() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert "durable.runtime" in graph["durable.executor"]
    assert "durable.lifecycle" in graph["durable.api"]  # `from . import lifecycle`: the submodule
    assert "durable" not in graph["durable.api"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycles_lazy_imports_included() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


# SQL outside store/: SQLAlchemy text, statements run on a connection or cursor, SQL spelled in a string.
_SQL_CALLS = re.compile(r"\bsa\.text\(|\btext\(|\.execute\(|exec_driver_sql\(|\.executemany\(")
_SQL_WORDS = re.compile(
    r"\b(SELECT\s+\S|INSERT\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX|SCHEMA)|"
    r"DROP\s+(TABLE|INDEX|SCHEMA)|ALTER\s+TABLE|LISTEN\s|pg_\w+\()"
)


def _string_constants(tree: ast.AST) -> list[str]:
    """String literals that are not docstrings (docstrings may describe SQL; they run none)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def _sql_outside_store() -> list[str]:
    found = []
    for name, path in _modules().items():
        if name.startswith("durable.store") or name in ("durable.schema", "durable.system_tables"):
            continue
        source = path.read_text()
        for number, line in enumerate(source.splitlines(), 1):
            code = line.split("#", 1)[0]
            if _SQL_CALLS.search(code):
                found.append(f"{path.name}:{number}: {line.strip()}")
        found.extend(f"{path.name}: SQL in a string: {text.strip()[:60]!r}"
                     for text in _string_constants(ast.parse(source)) if _SQL_WORDS.search(text))
    return found


def test_the_sql_check_finds_sql() -> None:
    assert _SQL_CALLS.search('connection.exec_driver_sql(sql, params)')
    assert _SQL_CALLS.search('cursor.execute("SELECT 1")')
    assert _SQL_WORDS.search("UPDATE {workflow_status} SET status = ?")
    assert _SQL_WORDS.search("SELECT pg_try_advisory_lock(%s)")
    assert not _SQL_WORDS.search("select a workflow to update")
    assert _string_constants(ast.parse('"""doc: SELECT 1"""\nx = "SELECT 1"')) == ["SELECT 1"]


def test_sql_only_in_store_and_schema() -> None:
    assert _sql_outside_store() == []


def test_no_module_over_the_size_ceiling() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_dialects_do_not_import_the_ddl() -> None:
    modules = _modules()
    assert "durable.schema" not in _imports("durable.store.dialects", modules["durable.store.dialects"], modules)


def test_the_error_tree_names_every_error() -> None:
    source = (DURABLE / "error.py").read_text()
    tree = ast.parse(source)
    docstring = ast.get_docstring(tree) or ""
    errors = [node.name for node in tree.body if isinstance(node, ast.ClassDef) and node.name != "DBOSErrorCode"]
    assert len(errors) > 20
    assert [name for name in errors if not re.search(rf"\b{name}\b", docstring)] == []


def test_the_readme_module_map_matches_the_modules() -> None:
    readme = (DURABLE / "README.md").read_text()
    table = readme[readme.index("| module | its one job |"):]
    table = table[:table.find("\n\n")]  # the map ends at its table's end (other tables follow)
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    mapped = {row.split("`")[1] for row in rows}
    packages = [path for path in DURABLE.iterdir() if (path / "__init__.py").is_file()]
    top_level = {path.name for path in DURABLE.glob("*.py")} | {f"{path.name}/" for path in packages}
    assert mapped == top_level
    for package in packages:  # a subpackage's row names each of its modules
        row = next(row for row in rows if row.startswith(f"| `{package.name}/`"))
        assert {name for name in re.findall(r"`([a-z_]+\.py)`", row)} == {
            path.name for path in package.glob("*.py") if path.name != "__init__.py"}
