"""Nothing in intake/ or shared/ can reach the vault, however indirectly it imports.

Every module of the project is parsed (not imported); every import statement counts,
including those inside functions and `importlib.import_module("...")` with a literal name.
Importing `a.b.c` also runs `a/__init__` and `a/b/__init__`, so those count too.
"""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("intake", "shared", "agent_service", "hapex")
VAULT = "agent_service.vault"


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            modules[module_name(root, path)] = path
    return modules


def imported_names(name: str, path: Path) -> set[str]:
    """Every module name an import anywhere in the file may load."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in {"import_module", "__import__"} and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.add(first.value)
    return found


def with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def reachable(start: list[str], modules: dict[str, Path]) -> dict[str, str | None]:
    """Every project module loaded by importing `start`, each with the module that led to it."""
    seen: dict[str, str | None] = {}
    queue: deque[tuple[str, str | None]] = deque((name, None) for name in start)
    while queue:
        name, via = queue.popleft()
        for candidate in with_parents(name):
            if candidate in modules and candidate not in seen:
                seen[candidate] = via
                queue.extend(
                    (target, candidate) for target in imported_names(candidate, modules[candidate])
                )
    return seen


def path_to(target: str, seen: dict[str, str | None]) -> list[str]:
    chain = [target]
    while seen.get(chain[-1]) is not None:
        chain.append(seen[chain[-1]])  # type: ignore[arg-type]
    return list(reversed(chain))


def vault_reached_from(root: Path, packages: tuple[str, ...], start_prefix: str) -> list[list[str]]:
    """Import chains from any module named start_prefix or under it into the vault."""
    modules = project_modules(root, packages)
    starts = [name for name in modules if name == start_prefix or name.startswith(start_prefix + ".")]
    assert starts
    seen = reachable(starts, modules)
    return [path_to(name, seen) for name in seen if name == VAULT or name.startswith(VAULT + ".")]


def test_the_vault_exists_where_this_test_looks_for_it():
    modules = project_modules(REPO, PACKAGES)
    assert {VAULT, f"{VAULT}.keyring", f"{VAULT}.service"} <= set(modules)
    assert sum(1 for name in modules if name.split(".")[0] in ("intake", "shared")) >= 10


def test_the_scan_sees_the_cli_reach_the_vault_through_imports_inside_its_functions():
    chains = vault_reached_from(REPO, PACKAGES, "hapex.cli")
    assert ["hapex.cli", "agent_service.vault.rotation"] in chains


@pytest.mark.parametrize("package", ["intake", "shared"])
def test_no_module_of_intake_or_shared_reaches_the_vault(package):
    chains = vault_reached_from(REPO, PACKAGES, package)
    assert chains == [], "import chains into the vault: " + "; ".join(" -> ".join(c) for c in chains)


@pytest.mark.parametrize("package", ["intake", "shared"])
def test_no_module_of_intake_or_shared_imports_the_agent_service_at_all(package):
    modules = project_modules(REPO, PACKAGES)
    seen = reachable([n for n in modules if n.split(".")[0] == package], modules)
    assert sorted(n for n in seen if n.split(".")[0] == "agent_service") == []


@pytest.mark.parametrize(
    "planted",
    [
        "from agent_service.vault import keyring\n",
        "def later():\n    from agent_service.vault.service import Vault\n",
        "class Later:\n    def m(self):\n        import agent_service.vault.aead\n",
        "import importlib\nmod = importlib.import_module('agent_service.vault')\n",
        "from agent_service import config\n",  # config imports the vault's key parsing
        "from .. import bridge\n",  # shared.bridge imports the vault
        "try:\n    import agent_service\nexcept ImportError:\n    pass\n",  # runs its __init__
    ],
)
def test_the_scan_finds_an_import_planted_anywhere_in_a_module(tmp_path, planted):
    files = {
        "shared/__init__.py": "",
        "shared/innocent.py": "import json\nfrom shared import sub\n",
        "shared/bridge.py": "from agent_service.vault.keys import key_id\n",
        "shared/sub/__init__.py": "",
        "shared/sub/sneaky.py": planted,
        "agent_service/__init__.py": "from agent_service.config import X\n",
        "agent_service/config.py": "from agent_service.vault.keys import key_id\n",
        "agent_service/vault/__init__.py": "",
        "agent_service/vault/keys.py": "",
        "agent_service/vault/aead.py": "",
        "agent_service/vault/keyring.py": "",
        "agent_service/vault/service.py": "",
    }
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    chains = vault_reached_from(tmp_path, ("shared", "agent_service"), "shared.sub.sneaky")
    assert chains, f"the scan missed: {planted!r}"
    assert all(chain[0] == "shared.sub.sneaky" for chain in chains), chains


def test_the_scan_passes_a_tree_that_does_not_import_the_vault(tmp_path):
    for relative, text in {
        "shared/__init__.py": "",
        "shared/a.py": "from shared import b\ndef f():\n    import json\n",
        "shared/b.py": "import importlib\nimportlib.import_module('shared.a')\n",
        "agent_service/__init__.py": "",
        "agent_service/vault/__init__.py": "from shared import a\n",
    }.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    assert vault_reached_from(tmp_path, ("shared", "agent_service"), "shared") == []
