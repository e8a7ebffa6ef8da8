"""What the intake may send to start a run or page through stored outputs, and what it gets back."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from shared.automations.definition import MAX_STEPS


class RunRequestSchema(Schema):
    """What started the run: the client pressing "Run now", or a call to its webhook URL."""

    class Meta:
        unknown = RAISE

    trigger = fields.String(load_default="manual", validate=validate.OneOf(["manual", "webhook"]))


class StartedRunSchema(Schema):
    """The queued run; over this month's budget a webhook run is recorded as cancelled instead."""

    run_id = fields.UUID(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["queued", "cancelled"]))


class RetriedRunSchema(Schema):
    """The new run retrying a failed one; from_step is its first step to run (from 0), the ones before
    it reusing the failed run's stored outputs."""

    run_id = fields.UUID(required=True)
    status = fields.String(required=True)
    from_step = fields.Integer(required=True, validate=validate.Range(min=0, max=MAX_STEPS - 1))


class StepTestSchema(Schema):
    """One step to test: its capability and its input with every field already filled in with samples."""

    class Meta:
        unknown = RAISE

    capability = fields.String(required=True, validate=validate.Length(1, 100))
    input = fields.Dict(keys=fields.String(), required=True)


class StepTestAnswerSchema(Schema):
    """The tested step's output, for the client's eyes only: never stored or logged."""

    output = fields.Dict(required=True)


class OutputsPageSchema(Schema):
    """A page of a client's stored outputs: after a (run, step), at most `limit` of them."""

    class Meta:
        unknown = RAISE

    after_run = fields.UUID(load_default=None)
    after_step = fields.Integer(load_default=None, validate=validate.Range(min=0, max=MAX_STEPS - 1))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))

    @validates_schema
    def _after_run_and_step_go_together(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data.get("after_run") is None) != (data.get("after_step") is None):
            raise ValidationError("after_run and after_step go together.", "after_step")


class StoredOutputSchema(Schema):
    """One step's stored output, opened for its client; output null and unreadable true if it did not open."""

    step_index = fields.Integer(required=True, validate=validate.Range(min=0))
    capability = fields.String(required=True)
    output = fields.Dict(required=True, allow_none=True)
    unreadable = fields.Boolean()


class ClientStoredOutputSchema(StoredOutputSchema):
    run_id = fields.UUID(required=True)


class RunOutputsSchema(Schema):
    """The run's stored outputs, in step order."""

    run_id = fields.UUID(required=True)
    outputs = fields.List(fields.Nested(StoredOutputSchema), required=True)


class NextPageSchema(Schema):
    after_run = fields.UUID(required=True)
    after_step = fields.Integer(required=True)


class OutputsPageAnswerSchema(Schema):
    """One page of stored outputs, by run then step; `next` is null on the last page."""

    outputs = fields.List(fields.Nested(ClientStoredOutputSchema), required=True)
    next = fields.Nested(NextPageSchema, required=True, allow_none=True)
