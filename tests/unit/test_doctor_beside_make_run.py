"""`hapex doctor` in a plain shell beside `make run` checks the local stack, not an empty environment."""

from __future__ import annotations

from hapex.cli import _local_stack_environment
from hapex.localstack.local_secrets import ensure_local_secrets
from hapex.settings import LauncherSettings


def test_doctor_checks_the_shells_environment_when_it_names_a_services_database(tmp_path):
    ensure_local_secrets(tmp_path)
    settings = LauncherSettings.from_env({"HAPEX_DATA_DIR": str(tmp_path), "AGENT_DATABASE_URL": "postgresql://x/y"})
    assert _local_stack_environment(settings) is None


def test_doctor_checks_the_shells_environment_when_no_local_stack_was_ever_made_or_runs(tmp_path):
    assert _local_stack_environment(LauncherSettings.from_env({"HAPEX_DATA_DIR": str(tmp_path)})) is None
    ensure_local_secrets(tmp_path)  # made once, but no embedded server runs now
    assert _local_stack_environment(LauncherSettings.from_env({"HAPEX_DATA_DIR": str(tmp_path)})) is None
