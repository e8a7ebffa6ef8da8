"""What the build chat answers the intake: its state for a client, and its reply to a draft."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from shared.automations.definition import AutomationSchema


class ChatStatusSchema(Schema):
    """Whether the chat can answer this client: configured, and budget left this month."""

    available = fields.Boolean(required=True)
    over_budget = fields.Boolean(required=True)
    prompt_version = fields.String(required=True)


class ConsentScopeSchema(Schema):
    """One scope the provider's consent screen will ask for, from the catalog."""

    scope = fields.String(required=True)
    access = fields.String(required=True, validate=validate.OneOf(["read", "write"]))
    purpose = fields.String(required=True)


class ChatAnswerSchema(Schema):
    """A validated proposal (automation, scopes, providers, summary, message) or a question (text)."""

    kind = fields.String(required=True, validate=validate.OneOf(["proposal", "question"]))
    prompt_version = fields.String(required=True)
    text = fields.String()
    automation = fields.Nested(AutomationSchema)
    scopes = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(ConsentScopeSchema)))
    providers = fields.List(fields.String())
    summary_in_plain_words = fields.String()
    message = fields.String()
