"""The architecture contracts in pyproject.toml hold, in `make test` as in `make lint`.

`lint-imports` follows every import statement, inside functions too, however indirect. Two
things it cannot see are held here instead: the package `__init__` modules that importing
`a.b.c` runs on the way (so each imports only its own package), and imports by computed name.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("agent_service", "intake", "shared", "hapex")
# The two app factories import every part of their service, inside create_app.
APP_FACTORIES = ("agent_service", "intake", "hapex.sandbox")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on the tree at root, its report one contract a line."""
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "400"})


def test_the_architecture_contracts_are_kept():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture(scope="module")
def product_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The product's packages and contracts, copied where a violation can be planted."""
    root = tmp_path_factory.mktemp("architecture")
    shutil.copy(REPO / "pyproject.toml", root)
    for package in PRODUCT:
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        ("intake/planted.py", "from agent_service.config import AgentConfig\n", "The intake never imports"),
        ("intake/planted.py", "def later():\n    import agent_service.vault\n", "The intake never imports"),
        ("shared/planted.py", "from intake.config import IntakeConfig\n", "shared/ imports neither"),
        ("shared/planted.py", "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\n",
         "touches AES-GCM"),
        ("shared/catalog/planted.py",
         "class Later:\n    def m(self):\n        from agent_service.vault import keyring\n", "touches AES-GCM"),
        ("agent_service/chat/planted.py", "from agent_service.runs import engine\n", "open a credential"),
        ("agent_service/chat/planted.py", "from agent_service.runs.triggers import start_run\n"
         "from agent_service.runtime import AgentRuntime\n", "open a credential"),
        ("agent_service/chat/planted.py", "from agent_service.capabilities import slack\n",
         "takes from the capabilities"),
    ],
)
def test_a_planted_import_breaks_its_contract(product_copy, module, planted, contract):
    path = product_copy / module
    path.write_text(planted)
    try:
        result = lint_imports(product_copy)
    finally:
        path.unlink()
    assert result.returncode != 0, result.stdout
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert any(contract in line for line in broken), result.stdout


def test_a_planted_import_through_shared_breaks_the_intakes_contract(product_copy):
    """Indirect: the intake imports an innocent shared module that imports the vault."""
    (product_copy / "shared/bridge.py").write_text("from agent_service.vault.keys import key_id\n")
    (product_copy / "intake/planted.py").write_text("from shared import bridge\n")
    try:
        result = lint_imports(product_copy)
    finally:
        (product_copy / "shared/bridge.py").unlink()
        (product_copy / "intake/planted.py").unlink()
    assert "intake.planted -> shared.bridge" in result.stdout
    assert result.returncode != 0


def test_the_copy_without_a_planted_import_keeps_every_contract(product_copy):
    result = lint_imports(product_copy)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_package_init_imports_only_its_own_package():
    """Importing a.b.c runs a/b/__init__, which lint-imports does not count as imported by the importer."""
    graph = grimp.build_graph(*PRODUCT)
    packages = [name for name in graph.modules
                if (REPO / Path(*name.split(".")) / "__init__.py").exists() and name not in APP_FACTORIES]
    assert {"agent_service.vault", "agent_service.capabilities", "shared.db", "intake.chat"} <= set(packages)
    outside = {package: sorted(m for m in graph.find_modules_directly_imported_by(package)
                               if not m.startswith(package + "."))
               for package in packages}
    assert {package: found for package, found in outside.items() if found} == {}


def test_no_product_module_imports_by_a_computed_name():
    """An import_module("...") call is invisible to lint-imports, so the product has none."""
    dynamic = re.compile(r"\b(import_module|__import__)\s*\(")
    found = [f"{path.relative_to(REPO)}:{number}"
             for package in PRODUCT for path in sorted((REPO / package).rglob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if dynamic.search(line)]
    assert found == []
