"""Input and output schemas of the capabilities (marshmallow), checked on save and at run time."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate


class StepInput(Schema):
    class Meta:
        unknown = RAISE


class StepOutput(Schema):
    class Meta:
        unknown = RAISE


_EMAIL = validate.Email(error="Not a valid email address: write it like name@example.com.")
_SHEET_ID = validate.Regexp(r"^[A-Za-z0-9_-]{10,100}$", error="A spreadsheet ID is the long part of the sheet's "
                            "address between /d/ and /edit.")
_DRIVE_ID = validate.Regexp(r"^[A-Za-z0-9_-]{10,100}$", error="A file ID is the long part of the file's address "
                            "between /d/ and /view.")


class MessageSummary(Schema):
    id = fields.String(required=True)
    thread_id = fields.String(required=True)
    sender = fields.String(load_default="")
    subject = fields.String(load_default="")
    date = fields.String(load_default="")


class GmailListInput(StepInput):
    label_ids = fields.List(fields.String(validate=validate.Length(1, 100)), load_default=["INBOX"],
                            validate=validate.Length(1, 10))
    newer_than_days = fields.Integer(load_default=1, validate=validate.Range(1, 365))
    max_results = fields.Integer(load_default=20, validate=validate.Range(1, 100))


class GmailSearchInput(StepInput):
    query = fields.String(required=True, validate=validate.Length(1, 500))
    max_results = fields.Integer(load_default=20, validate=validate.Range(1, 100))


class GmailMessagesOutput(StepOutput):
    messages = fields.List(fields.Nested(MessageSummary), required=True)


class GmailReadInput(StepInput):
    message_ids = fields.List(fields.String(validate=validate.Length(1, 100)), required=True,
                              validate=validate.Length(1, 50))


class EmailContent(Schema):
    id = fields.String(required=True)
    sender = fields.String(load_default="")
    subject = fields.String(load_default="")
    body_text = fields.String(load_default="")


class GmailReadOutput(StepOutput):
    emails = fields.List(fields.Nested(EmailContent), required=True)


class GmailDraftInput(StepInput):
    to = fields.List(fields.String(validate=_EMAIL), required=True, validate=validate.Length(1, 20))
    subject = fields.String(required=True, validate=validate.Length(1, 300))
    body_text = fields.String(required=True, validate=validate.Length(1, 50_000))


class DraftOutput(StepOutput):
    draft_id = fields.String(required=True)


class SheetsReadInput(StepInput):
    spreadsheet_id = fields.String(required=True, validate=_SHEET_ID)
    range = fields.String(required=True, validate=validate.Length(1, 100))


class RowsOutput(StepOutput):
    rows = fields.List(fields.List(fields.Raw()), required=True)


class SheetsAppendInput(StepInput):
    spreadsheet_id = fields.String(required=True, validate=_SHEET_ID)
    range = fields.String(required=True, validate=validate.Length(1, 100))
    rows = fields.List(fields.List(fields.Raw()), required=True, validate=validate.Length(1, 1000))


class AppendOutput(StepOutput):
    updated_rows = fields.Integer(required=True)


class CalendarListInput(StepInput):
    calendar_id = fields.String(load_default="primary", validate=validate.Length(1, 200))
    days_ahead = fields.Integer(load_default=1, validate=validate.Range(0, 60))
    max_results = fields.Integer(load_default=50, validate=validate.Range(1, 250))


class EventSummary(Schema):
    id = fields.String(required=True)
    title = fields.String(load_default="")
    start = fields.String(load_default="")
    end = fields.String(load_default="")


class EventsOutput(StepOutput):
    events = fields.List(fields.Nested(EventSummary), required=True)


class CalendarCreateInput(StepInput):
    calendar_id = fields.String(load_default="primary", validate=validate.Length(1, 200))
    title = fields.String(required=True, validate=validate.Length(1, 300))
    start = fields.AwareDateTime(required=True)
    end = fields.AwareDateTime(required=True)
    description = fields.String(load_default="", validate=validate.Length(0, 5000))


class CreatedOutput(StepOutput):
    id = fields.String(required=True)


class DriveReadInput(StepInput):
    file_id = fields.String(required=True, validate=_DRIVE_ID)


class FileOutput(StepOutput):
    name = fields.String(required=True)
    mime_type = fields.String(required=True)
    text = fields.String(required=True)


class SlackPostInput(StepInput):
    channel = fields.String(required=True, validate=validate.Regexp(
        r"^(#[a-z0-9_-]{1,80}|[CGD][A-Z0-9]{6,20})$",
        error="A Slack channel starts with # and is lowercase, like #accounts, or is a channel ID like C0123456789."))
    text = fields.String(required=True, validate=validate.Length(1, 40_000))


class SlackPostOutput(StepOutput):
    channel = fields.String(required=True)
    ts = fields.String(required=True)


class OutlookSearchInput(StepInput):
    query = fields.String(required=True, validate=validate.Length(1, 500))
    max_results = fields.Integer(load_default=20, validate=validate.Range(1, 100))


class NotionAppendInput(StepInput):
    page_id = fields.String(required=True, validate=validate.Regexp(
        r"^[0-9a-fA-F-]{32,36}$", error="A Notion page ID is the 32 letters and digits at the end of the page's "
                                        "address."))
    text = fields.String(required=True, validate=validate.Length(1, 2000))


class HubSpotContactInput(StepInput):
    email = fields.String(required=True, validate=_EMAIL)
    first_name = fields.String(load_default="", validate=validate.Length(0, 100))
    last_name = fields.String(load_default="", validate=validate.Length(0, 100))
    company = fields.String(load_default="", validate=validate.Length(0, 200))


class WebhookInput(StepInput):
    url = fields.Url(required=True, schemes={"https"}, require_tld=True)
    payload = fields.Dict(keys=fields.String(), required=True)


class WebhookOutput(StepOutput):
    status_code = fields.Integer(required=True)


class LLMSummariseInput(StepInput):
    text = fields.Raw(required=True)
    instructions = fields.String(load_default="", validate=validate.Length(0, 2000))
    max_words = fields.Integer(load_default=200, validate=validate.Range(10, 2000))


class LLMTextOutput(StepOutput):
    text = fields.String(required=True)


class LLMClassifyInput(StepInput):
    text = fields.Raw(required=True)
    labels = fields.List(fields.String(validate=validate.Length(1, 100)), required=True,
                         validate=validate.Length(2, 50))


class LLMClassifyOutput(StepOutput):
    label = fields.String(required=True)


class LLMExtractInput(StepInput):
    text = fields.Raw(required=True)
    fields_wanted = fields.List(fields.String(validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,40}$")),
                                required=True, data_key="fields", validate=validate.Length(1, 30))


class LLMExtractOutput(StepOutput):
    values = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)


CONDITION_OPERATORS = ("equals", "not_equals", "contains", "not_contains", "greater_than", "less_than",
                       "is_empty", "is_not_empty")
CONDITION_TYPES = ("text", "number", "date")
# Operators that compare with nothing.
UNARY_OPERATORS = ("is_empty", "is_not_empty")


class ConditionInput(StepInput):
    value = fields.String(required=True, validate=validate.Length(0, 20_000),
                          metadata={"description": "What to check, usually a field like {{ steps.2.values.amount }}."})
    operator = fields.String(required=True, validate=validate.OneOf(CONDITION_OPERATORS))
    compare_to = fields.String(load_default="", validate=validate.Length(0, 1000))
    compare_as = fields.String(load_default="text", validate=validate.OneOf(CONDITION_TYPES))


class ConditionOutput(StepOutput):
    passed = fields.Boolean(required=True)


# --- the fields a trigger gives a run (text with fields names them trigger.<field>) -----------


class TriggerFields(Schema):
    """What every run knows about how it started."""

    started_at = fields.String(required=True, metadata={"description": "When the run started, in the "
                                                                          "automation's time zone (ISO 8601)."})


class ScheduleTriggerFields(TriggerFields):
    scheduled_for = fields.String(required=True, metadata={"description": "The schedule slot the run is for, "
                                                                             "in the automation's time zone."})


# The trigger fields of each trigger kind; a kind not listed has those of every run only. A poll
# trigger's fields depend on its source (POLL_TRIGGERS' item_fields, below).
TRIGGER_FIELDS: dict[str, type[Schema]] = {
    "manual": TriggerFields,
    "schedule": ScheduleTriggerFields,
    "webhook": TriggerFields,
}


# --- "when something new arrives": what the client sets, and what each new item gives a run ---


class PollOptions(StepInput):
    pass


class NewEmailOptions(PollOptions):
    query = fields.String(load_default="in:inbox", validate=validate.Length(1, 500), metadata={
        "description": "A Gmail search the new email must match, like from:billing@example.com has:attachment."})


class NewOutlookEmailOptions(PollOptions):
    query = fields.String(load_default="", validate=validate.Length(1, 500), metadata={
        "description": "An Outlook search the new email in the inbox must match, like from:billing@example.com "
                       "invoice; leave it out for every new email in the inbox."})


class NewRowOptions(PollOptions):
    spreadsheet_id = fields.String(required=True, validate=_SHEET_ID)
    sheet = fields.String(load_default="Sheet1", validate=validate.Regexp(
        r"^[^'!:\[\]*?/\\]{1,100}$", error="A sheet's name is the tab's name at the bottom, like Sheet1 "
                                               "(without ! or quotes)."), metadata={
        "description": "The tab whose new rows start runs; its first row names the columns."})


class NewEventOptions(PollOptions):
    calendar_id = fields.String(load_default="primary", validate=validate.Length(1, 200), metadata={
        "description": "primary, or a calendar's ID from its settings."})


class NewContactOptions(PollOptions):
    pass


class EmailFields(Schema):
    id = fields.String(required=True)
    thread_id = fields.String(required=True)
    sender = fields.String(required=True, data_key="from")
    to = fields.String(required=True)
    subject = fields.String(required=True)
    date = fields.String(required=True)
    snippet = fields.String(required=True)
    body_text = fields.String(required=True)


class NewEmailFields(TriggerFields):
    email = fields.Nested(EmailFields, required=True)


class NewRowFields(TriggerFields):
    row_number = fields.Integer(required=True, metadata={"description": "The row's number in the sheet."})
    row = fields.Dict(keys=fields.String(), values=fields.String(), required=True, metadata={
        "description": "The row's cells by the column names in the sheet's first row, in lowercase with _ for spaces "
                       "(Email address is trigger.row.email_address; a column without a name is its letter, a)."})
    values = fields.List(fields.String(), required=True)


class EventFields(Schema):
    id = fields.String(required=True)
    summary = fields.String(required=True)
    description = fields.String(required=True)
    location = fields.String(required=True)
    start = fields.String(required=True)
    end = fields.String(required=True)
    organizer = fields.String(required=True)
    link = fields.String(required=True)


class NewEventFields(TriggerFields):
    event = fields.Nested(EventFields, required=True)


class ContactFields(Schema):
    id = fields.String(required=True)
    email = fields.String(required=True)
    first_name = fields.String(required=True)
    last_name = fields.String(required=True)
    company = fields.String(required=True)
    created_at = fields.String(required=True)


class NewContactFields(TriggerFields):
    contact = fields.Nested(ContactFields, required=True)
