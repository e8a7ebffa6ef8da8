"""A step attempt in a traceback or a log line shows where it is, never the step's input."""

from __future__ import annotations

from agent_service.runs.engine import StepAttempt

CANARY = "CANARY-STEP-INPUT-5d1e"


def test_a_step_attempts_repr_leaves_out_its_input_and_connection():
    attempt = StepAttempt(run=None, index=2, provider=None,  # type: ignore[arg-type]  # only the repr is looked at
                          data={"text": CANARY}, connection={"account_label": CANARY})
    shown = repr(attempt)
    assert "index=2" in shown
    assert CANARY not in shown
