"""An idle worker is quiet at INFO: the maintenance queue's routine job lines are DEBUG."""

from __future__ import annotations

import logging

import pytest

from agent_service.worker import QuietMaintenance


def record(action: str, queue: str, level: int = logging.INFO) -> logging.LogRecord:
    made = logging.LogRecord("procrastinate.worker", level, __file__, 1, "Job ended", None, None)
    made.action = action
    made.job = {"queue": queue, "task_name": "hapex:send_notifications"}
    return made


@pytest.fixture
def root_level():
    root = logging.getLogger()
    before = root.level
    yield root
    root.setLevel(before)


@pytest.mark.parametrize("action", ["start_job", "job_success", "periodic_task_deferred"])
def test_routine_maintenance_lines_are_dropped_at_info_and_kept_at_debug(root_level, action):
    root_level.setLevel(logging.INFO)
    assert QuietMaintenance().filter(record(action, "maintenance")) is False
    root_level.setLevel(logging.DEBUG)
    assert QuietMaintenance().filter(record(action, "maintenance")) is True


def test_failures_of_maintenance_jobs_and_every_run_job_line_still_pass(root_level):
    root_level.setLevel(logging.INFO)
    assert QuietMaintenance().filter(record("job_error", "maintenance", logging.ERROR)) is True
    assert QuietMaintenance().filter(record("job_error_retry", "maintenance")) is True
    assert QuietMaintenance().filter(record("start_job", "runs")) is True
    assert QuietMaintenance().filter(record("job_success", "runs")) is True
