"""Named SQL blocks parse into a dict; malformed files are refused; none is defined and left unused."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

from shared.db.queries import QuerySet, parse_queries

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("agent_service", "intake", "shared", "hapex")


def _query_files(root: Path) -> list[Path]:
    """Every file of named SQL: the .sql files of the product outside the migrations."""
    return sorted(path for package in PRODUCT for path in (root / package).rglob("*.sql")
                  if "migrations" not in path.relative_to(root).parts)


def _loaded_files_and_strings(module: Path) -> tuple[set[Path], set[str]]:
    """Which .sql files a module loads (`Path(__file__).with_name("x.sql")`) and every string it holds."""
    loaded: set[Path] = set()
    strings: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.add(node.value)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "with_name"
                and node.args and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).endswith(".sql")):
            loaded.add(module.with_name(str(node.args[0].value)))
    return loaded, strings


def unreferenced_queries(query_files: Iterable[Path], modules: Iterable[Path]) -> list[str]:
    """Each `file: name` that no module loading that file names: a query only tests could run is dead too."""
    named_in: dict[Path, set[str]] = {}
    for module in modules:
        loaded, strings = _loaded_files_and_strings(module)
        for path in loaded:
            named_in.setdefault(path, set()).update(strings)
    return [f"{path.name}: {name}" for path in query_files
            for name in QuerySet(path).names() if name not in named_in.get(path, set())]


def test_blocks_parse_by_name_without_their_description():
    queries = parse_queries("-- one --\n-- The first.\nSELECT 1\n\n-- two --\n-- The second.\nSELECT %(x)s\n")
    assert queries == {"one": "SELECT 1", "two": "SELECT %(x)s"}


def test_a_block_without_a_description_is_refused():
    with pytest.raises(ValueError, match="description"):
        parse_queries("-- one --\nSELECT 1\n")


def test_a_name_defined_twice_is_refused():
    with pytest.raises(ValueError, match="twice"):
        parse_queries("-- one --\n-- a\nSELECT 1\n-- one --\n-- b\nSELECT 2\n")


def test_every_query_file_in_the_project_parses():
    files = _query_files(REPO)
    assert any(path.name == "queries.sql" for path in files) and any(path.name != "queries.sql" for path in files)
    for path in files:
        assert QuerySet(path).names(), path


def test_every_named_query_is_run_by_the_code_that_loads_its_file():
    modules = [path for package in PRODUCT for path in (REPO / package).rglob("*.py")]
    assert unreferenced_queries(_query_files(REPO), modules) == []


def test_a_query_no_module_names_is_reported(tmp_path):
    (tmp_path / "queries.sql").write_text("-- used --\n-- Run.\nSELECT 1\n\n-- forgotten --\n-- Not run.\nSELECT 2\n")
    (tmp_path / "repository.py").write_text(
        'QUERIES = QuerySet(Path(__file__).with_name("queries.sql"))\nQUERIES["used"]\n')
    (tmp_path / "elsewhere.py").write_text('"forgotten"  # named, but by a module that does not load the file\n')
    assert unreferenced_queries([tmp_path / "queries.sql"], tmp_path.glob("*.py")) == ["queries.sql: forgotten"]


def test_in_the_agent_named_sql_sits_beside_the_one_module_that_runs_it():
    """A domain's queries.sql is run by its repository.py; any other x.sql by its x.py alone."""
    misplaced = []
    for package in ("agent_service", "shared"):
        for module in (REPO / package).rglob("*.py"):
            for path in _loaded_files_and_strings(module)[0]:
                runner = "repository" if path.stem == "queries" else path.stem
                if module.stem != runner:
                    misplaced.append(f"{module.relative_to(REPO)} runs {path.name}")
    assert misplaced == []


def test_within_one_service_a_query_name_means_one_query():
    """A name defined in two files the agent's code loads would read as one query and be two."""
    seen: dict[str, Path] = {}
    for path in _query_files(REPO):
        if path.relative_to(REPO).parts[0] not in ("agent_service", "shared"):
            continue
        for name in QuerySet(path).names():
            assert name not in seen, f"{name} is defined in {seen.get(name)} and {path}"
            seen[name] = path
