"""Configuration is read once, in the config modules: nothing else reads the process environment.

import-linter cannot say this (it sees `import os`, which most modules need for other things,
not `os.environ`), so every product module is parsed here. A module outside READERS that
touches os.environ / os.environb / os.getenv (however os is imported), imports one of them
from os, builds an `Environment()` on the process environment, or builds a config from the
process environment outside the entry points, fails this test with the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("agent_service", "intake", "shared", "hapex", "deploy")
# The only modules that may read the process environment.
READERS = frozenset({
    "shared/config.py",  # Environment: the typed readers every config class uses
    "intake/config.py",  # IntakeConfig
    "agent_service/config.py",  # AgentConfig, CredentialKeysConfig, ReportsConfig
    "hapex/settings.py",  # LauncherSettings (the hapex command), GunicornSettings
})
# Where a process starts and builds its configuration, once, from its own environment.
ENTRY_POINTS = frozenset({
    "intake/wsgi.py",
    "agent_service/wsgi.py",
    "hapex/cli.py",
    "deploy/gunicorn.conf.py",
})
ENVIRONMENT_NAMES = frozenset({"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"})


def environment_reads(source: str, relative: str) -> list[str]:
    """Each place in one module's source that reads the process environment outside the rules."""
    if relative in READERS:
        return []
    tree = ast.parse(source)
    os_names = {"os"}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "os":
                    os_names.add(alias.asname or "os")
                elif alias.name.startswith("os.") and alias.name.split(".")[1] in ENVIRONMENT_NAMES:
                    found.append(f"{relative}:{node.lineno} imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module in ("os", "posix", "nt"):
            found += [f"{relative}:{node.lineno} imports {alias.name} from {node.module}"
                      for alias in node.names if alias.name in ENVIRONMENT_NAMES]
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT_NAMES
                and isinstance(node.value, ast.Name) and node.value.id in os_names):
            found.append(f"{relative}:{node.lineno} reads {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Call) and not node.args and not node.keywords:
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name == "Environment":
                found.append(f"{relative}:{node.lineno} builds Environment() on the process environment")
            elif name == "from_env" and relative not in ENTRY_POINTS:
                found.append(f"{relative}:{node.lineno} builds a config from the process environment "
                             "outside an entry point")
    return found


def product_modules() -> dict[str, str]:
    return {path.relative_to(REPO).as_posix(): path.read_text(encoding="utf-8")
            for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))}


def test_only_the_config_modules_read_the_process_environment():
    found = [place for relative, source in product_modules().items() for place in environment_reads(source, relative)]
    assert not found, "read the environment through IntakeConfig, AgentConfig or LauncherSettings instead:\n" + \
        "\n".join(found)


def test_every_listed_reader_and_entry_point_exists_and_reads():
    modules = product_modules()
    assert READERS | ENTRY_POINTS <= set(modules)
    for relative in READERS:
        source = modules[relative]
        reads = environment_reads(source, "elsewhere.py") or "Environment(environ" in source
        assert reads, f"{relative} reads nothing: drop it from READERS"


@pytest.mark.parametrize("source", [
    "import os\nvalue = os.environ.get('X')\n",
    "import os\nvalue = os.environ['X']\n",
    "import os\nvalue = os.getenv('X')\n",
    "import os as system\nvalue = system.environb\n",
    "from os import environ\n",
    "from os import getenv as read\n",
    "import os.environ\n",
    "def f():\n    import os\n    return dict(os.environ)\n",
    "from shared.config import Environment\nenv = Environment()\n",
    "from agent_service.config import AgentConfig\nconfig = AgentConfig.from_env()\n",
])
def test_a_read_of_the_environment_outside_the_config_modules_is_found(source):
    assert environment_reads(source, "agent_service/runs/engine.py")


@pytest.mark.parametrize("source", [
    "import os\npath = os.path.join('a', 'b')\n",
    "from shared.config import Environment\nenv = Environment({'X': '1'})\n",
    "from agent_service.config import AgentConfig\nconfig = AgentConfig.from_env({'X': '1'})\n",
    "class Request:\n    environ = {}\nvalue = Request.environ\n",
])
def test_what_is_not_a_read_of_the_process_environment_passes(source):
    assert environment_reads(source, "agent_service/runs/engine.py") == []


def test_the_rules_are_per_module():
    source = "import os\nvalue = os.environ\n"
    assert environment_reads(source, "agent_service/config.py") == []
    building = "from intake.config import IntakeConfig\nIntakeConfig.from_env()\n"
    assert environment_reads(building, "intake/wsgi.py") == []
    assert environment_reads(building, "intake/connections/views.py")
