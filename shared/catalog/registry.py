"""The catalog's contents: every provider Hapex connects and every capability it offers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shared.catalog import schemas as s
from shared.catalog.model import (
    Access,
    AuthKind,
    Capability,
    PollTrigger,
    Provider,
    ResolvedCatalog,
    Revocation,
    Scope,
    TokenAuth,
    TokenRequest,
)

R, W = Access.READ, Access.WRITE
_G = "https://www.googleapis.com/auth/"

GOOGLE = Provider(
    key="google",
    name="Google Workspace",
    auth_kind=AuthKind.OAUTH2,
    description="Gmail, Google Sheets, Google Calendar and Google Drive.",
    authorization_url="https://accounts.google.com/o/oauth2/v2/auth",
    token_url="https://oauth2.googleapis.com/token",  # noqa: S106 - an endpoint, not a secret
    revocation_url="https://oauth2.googleapis.com/revoke",
    issuer="https://accounts.google.com",
    api_base_url="https://www.googleapis.com",
    authorization_params={"access_type": "offline", "prompt": "consent"},
    manage_access_url="https://myaccount.google.com/connections",
    revocation=Revocation.RFC7009,
    # developers.google.com/identity/protocols/oauth2/web-server#tokenrevoke: 200 once revoked,
    # 400 `invalid_token` for a token Google does not know (expired or already revoked).
    revocation_token_unknown=frozenset({"invalid_token"}),
    # Google's authorization responses carry iss=https://accounts.google.com (RFC 9207).
    sends_issuer=True,
    incremental_authorization_params={"include_granted_scopes": "true"},
    scopes=(
        Scope(_G + "gmail.metadata", R,
              "See the sender, subject and date of your emails (never their bodies or attachments)."),
        Scope(_G + "gmail.readonly", R, "Search and read your emails; never send, change or delete them.",
              implies=frozenset({_G + "gmail.metadata"}),
              conflicts_with=frozenset({_G + "gmail.metadata"})),
        Scope(_G + "gmail.compose", W, "Create email drafts for you to review; Hapex never sends them."),
        Scope(_G + "spreadsheets.readonly", R, "Read the cells of the spreadsheets an automation names."),
        Scope(_G + "spreadsheets", W, "Append rows to the spreadsheets an automation names.",
              implies=frozenset({_G + "spreadsheets.readonly"})),
        Scope(_G + "calendar.events.readonly", R, "See the events on your calendars."),
        Scope(_G + "calendar.events", W, "Create events on your calendars.",
              implies=frozenset({_G + "calendar.events.readonly"})),
        Scope(_G + "drive.file", R,
              "Open only the files you pick for an automation, not the rest of your Drive."),
    ),
)

SLACK = Provider(
    key="slack",
    name="Slack",
    auth_kind=AuthKind.OAUTH2,
    description="Post messages to the channels you choose.",
    authorization_url="https://slack.com/oauth/v2/authorize",
    token_url="https://slack.com/api/oauth.v2.access",  # noqa: S106
    revocation_url="https://slack.com/api/auth.revoke",
    api_base_url="https://slack.com/api",
    scope_separator=",",
    manage_access_url="https://slack.com/apps/manage",
    # docs.slack.dev/reference/methods/oauth.v2.access: "supply the Client ID and Client Secret
    # using the HTTP Basic authentication scheme" rather than as parameters.
    token_auth=TokenAuth.BASIC,
    revocation=Revocation.SLACK,
    # api.slack.com/methods/auth.revoke: the errors that say the token is gone. Not invalid_auth,
    # which Slack also answers for a request from a disallowed IP address.
    revocation_token_unknown=frozenset({"token_revoked", "account_inactive"}),
    scopes=(Scope("chat:write", W, "Post messages as the Hapex app in channels it has been added to."),),
)

MICROSOFT = Provider(
    key="microsoft",
    name="Microsoft 365",
    auth_kind=AuthKind.OAUTH2,
    description="Outlook mail and calendar.",
    authorization_url="https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
    token_url="https://login.microsoftonline.com/common/oauth2/v2.0/token",  # noqa: S106
    # Microsoft offers no token revocation endpoint; disconnecting deletes our copy and
    # the client removes the app at manage_access_url.
    revocation_url=None,
    api_base_url="https://graph.microsoft.com/v1.0",
    base_scopes=("offline_access",),
    manage_access_url="https://myapps.microsoft.com",
    scopes=(
        Scope("Mail.Read", R, "Search and read your Outlook mail; never send, change or delete it."),
        # Graph's calendarView names Calendars.ReadBasic its least privilege: events without
        # their body, attachments or extensions, which is all the step reads.
        Scope("Calendars.ReadBasic", R,
              "See the time and subject of the events on your Outlook calendars, never their details."),
        Scope("Calendars.ReadWrite", W, "Create events on your Outlook calendars.",
              implies=frozenset({"Calendars.ReadBasic"})),
    ),
)

NOTION = Provider(
    key="notion",
    name="Notion",
    auth_kind=AuthKind.OAUTH2,
    description="Append text to the pages you share with Hapex.",
    authorization_url="https://api.notion.com/v1/oauth/authorize",
    token_url="https://api.notion.com/v1/oauth/token",  # noqa: S106
    revocation_url="https://api.notion.com/v1/oauth/revoke",
    api_base_url="https://api.notion.com/v1",
    authorization_params={"owner": "user"},
    manage_access_url="https://www.notion.so/profile/integrations",
    # developers.notion.com/reference/create-a-token, /refresh-a-token, /revoke-token: HTTP
    # Basic client authentication and a JSON body, and the API version header on each.
    token_auth=TokenAuth.BASIC,
    token_request=TokenRequest.JSON,
    revocation=Revocation.NOTION,
    api_headers={"Notion-Version": "2022-06-28"},
    # Notion has no OAuth scopes: access is limited to the pages the client shares.
    scopes=(),
)

HUBSPOT = Provider(
    key="hubspot",
    name="HubSpot",
    auth_kind=AuthKind.OAUTH2,
    description="Create contacts in your CRM.",
    authorization_url="https://app.hubspot.com/oauth/authorize",
    # The 2026-03 OAuth API (the v1 endpoints sunset on 2027-02-16 and put the refresh token in
    # the URL path): form-encoded bodies with client_id and client_secret, revocation included.
    token_url="https://api.hubapi.com/oauth/2026-03/token",  # noqa: S106
    revocation_url="https://api.hubapi.com/oauth/2026-03/token/revoke",
    api_base_url="https://api.hubapi.com",
    manage_access_url="https://app.hubspot.com/connected-apps",
    revocation=Revocation.RFC7009,
    scopes=(
        Scope("crm.objects.contacts.write", W, "Create contacts in your HubSpot CRM."),
        Scope("crm.objects.contacts.read", R, "See the new contacts in your HubSpot CRM, for an automation that "
              "starts when one is added."),
    ),
)

WEBHOOK = Provider(
    key="webhook",
    name="Outbound webhook",
    auth_kind=AuthKind.API_KEY,
    description="Send a JSON payload to an HTTPS address of yours, signed with a secret header.",
)

ANTHROPIC = Provider(
    key="anthropic",
    name="Anthropic (Claude)",
    auth_kind=AuthKind.HAPEX_KEY,
    description=(
        "Hapex's own language-model sub-processor: summarising, classifying and extracting. "
        "It uses Hapex's account, never yours; the text a step sends is not used for training."
    ),
    api_base_url="https://api.anthropic.com",
)

HAPEX = Provider(
    key="hapex",
    name="Hapex (built in)",
    auth_kind=AuthKind.HAPEX_KEY,
    description="Steps Hapex does itself, such as “continue only if”: no account, and nothing is sent anywhere.",
    built_in=True,
)

PROVIDERS: dict[str, Provider] = {
    p.key: p for p in (GOOGLE, SLACK, MICROSOFT, NOTION, HUBSPOT, WEBHOOK, ANTHROPIC, HAPEX)
}
# The key of the "continue only if" step: a run whose condition is not met stops there, not failed.
CONDITION = "condition.continue_if"


CAPABILITIES: dict[str, Capability] = {
    c.key: c
    for c in (
        Capability("gmail.list_recent", "google", "List recent emails",
                   "Sender, subject and date of recent emails with the given labels.",
                   R, (_G + "gmail.metadata",), s.GmailListInput, s.GmailMessagesOutput),
        Capability("gmail.search", "google", "Search emails", "Find emails matching a Gmail search.",
                   R, (_G + "gmail.readonly",), s.GmailSearchInput, s.GmailMessagesOutput),
        Capability("gmail.read", "google", "Read emails", "The text of the emails found by an earlier step.",
                   R, (_G + "gmail.readonly",), s.GmailReadInput, s.GmailReadOutput),
        Capability("gmail.create_draft", "google", "Draft an email", "A draft in your Gmail for you to send.",
                   W, (_G + "gmail.compose",), s.GmailDraftInput, s.DraftOutput, side_effect=True),
        Capability("sheets.read", "google", "Read a spreadsheet range", "The cells of one range.",
                   R, (_G + "spreadsheets.readonly",), s.SheetsReadInput, s.RowsOutput),
        Capability("sheets.append", "google", "Append rows to a spreadsheet", "New rows after the last one.",
                   W, (_G + "spreadsheets",), s.SheetsAppendInput, s.AppendOutput, side_effect=True),
        Capability("calendar.list_events", "google", "List calendar events", "Upcoming events.",
                   R, (_G + "calendar.events.readonly",), s.CalendarListInput, s.EventsOutput),
        Capability("calendar.create_event", "google", "Create a calendar event", "A new event.",
                   W, (_G + "calendar.events",), s.CalendarCreateInput, s.CreatedOutput, side_effect=True),
        Capability("drive.read_file", "google", "Read a Drive file", "The text of a file you picked.",
                   R, (_G + "drive.file",), s.DriveReadInput, s.FileOutput),
        Capability("slack.post_message", "slack", "Post to Slack", "A message in a channel.",
                   W, ("chat:write",), s.SlackPostInput, s.SlackPostOutput, side_effect=True),
        Capability("outlook.search_mail", "microsoft", "Search Outlook mail", "Emails matching a search.",
                   R, ("Mail.Read",), s.OutlookSearchInput, s.GmailMessagesOutput),
        Capability("outlook.list_events", "microsoft", "List Outlook events", "Upcoming events.",
                   R, ("Calendars.ReadBasic",), s.CalendarListInput, s.EventsOutput),
        Capability("outlook.create_event", "microsoft", "Create an Outlook event", "A new event.",
                   W, ("Calendars.ReadWrite",), s.CalendarCreateInput, s.CreatedOutput, side_effect=True),
        Capability("notion.append_to_page", "notion", "Append to a Notion page", "A paragraph at the end.",
                   W, (), s.NotionAppendInput, s.CreatedOutput, side_effect=True),
        Capability("hubspot.create_contact", "hubspot", "Create a HubSpot contact", "A new CRM contact.",
                   W, ("crm.objects.contacts.write",), s.HubSpotContactInput, s.CreatedOutput, side_effect=True),
        Capability("webhook.post", "webhook", "Call a webhook", "POST a JSON payload to your HTTPS address.",
                   W, (), s.WebhookInput, s.WebhookOutput, side_effect=True),
        Capability("llm.summarise", "anthropic", "Summarise with Claude", "A short summary of the input.",
                   R, (), s.LLMSummariseInput, s.LLMTextOutput, billable_llm=True),
        Capability("llm.classify", "anthropic", "Classify with Claude", "One of the labels you give.",
                   R, (), s.LLMClassifyInput, s.LLMClassifyOutput, billable_llm=True),
        Capability("llm.extract", "anthropic", "Extract fields with Claude", "Named values from the input.",
                   R, (), s.LLMExtractInput, s.LLMExtractOutput, billable_llm=True),
        Capability(CONDITION, "hapex", "Continue only if",
                   "Compares a value (usually a field of an earlier step) with another; when the comparison "
                   "does not hold, the run stops here, recorded as stopped by condition, not as a failure. "
                   "Text compares ignoring case and surrounding spaces; numbers may carry a currency or "
                   "thousands separators (€1,250.00); dates are ISO 8601 (2026-03-02 or 2026-03-02T09:00:00+01:00) "
                   "or as in an email's Date header.",
                   R, (), s.ConditionInput, s.ConditionOutput),
    )
}


# "When something new arrives": sources polled for new items, each new item one run. Read-only
# scopes only: the poll lists ids and the run reads the item's fields through the same scope.
POLL_TRIGGERS: dict[str, PollTrigger] = {
    t.key: t
    for t in (
        PollTrigger("gmail.new_email", "google", "New email in Gmail",
                    "Starts a run for each new email matching a Gmail search (users.history since the last "
                    "poll); its sender, subject, date and text are trigger.email.<field>.",
                    (_G + "gmail.readonly",), s.NewEmailOptions, s.NewEmailFields),
        # Mail.ReadBasic covers the inbox delta, but not $search (the client's search) nor bodyPreview
        # and the body a run reads (snippet, body_text): Mail.Read is the least privilege covering them.
        PollTrigger("outlook.new_email", "microsoft", "New email in Outlook",
                    "Starts a run for each new email in the Outlook inbox matching a search (Microsoft Graph's "
                    "inbox delta since the last poll); its sender, subject, date and text are "
                    "trigger.email.<field>.",
                    ("Mail.Read",), s.NewOutlookEmailOptions, s.NewEmailFields),
        PollTrigger("sheets.new_row", "google", "New row in a Google Sheet",
                    "Starts a run for each row added at the end of a sheet; trigger.row.<column> is a cell by "
                    "the column's name in the first row, lowercase with _ for spaces (trigger.row.email_address).",
                    (_G + "spreadsheets.readonly",), s.NewRowOptions, s.NewRowFields),
        PollTrigger("calendar.new_event", "google", "New Google Calendar event",
                    "Starts a run for each event created on a calendar; trigger.event.<field> are its title "
                    "(summary), times, place and description.",
                    (_G + "calendar.events.readonly",), s.NewEventOptions, s.NewEventFields),
        PollTrigger("hubspot.new_contact", "hubspot", "New HubSpot contact",
                    "Starts a run for each contact added to your HubSpot CRM (CRM search by create date); its "
                    "email, name and company are trigger.contact.<field>.",
                    ("crm.objects.contacts.read",), s.NewContactOptions, s.NewContactFields),
    )
}
# The finest poll interval, and the coarsest.
POLL_MIN_MINUTES = 5
POLL_MAX_MINUTES = 1440


def poll_trigger_of(trigger: Any) -> PollTrigger | None:
    """The poll source of an automation's trigger, if it is a poll of a known source."""
    if not isinstance(trigger, Mapping) or trigger.get("kind") != "poll":
        return None
    return POLL_TRIGGERS.get(str(trigger.get("source", "")))


class Catalog:
    """A view of providers and capabilities, as the pages render it."""

    def __init__(self, providers: Iterable[Provider] = (), capabilities: Iterable[Capability] = ()) -> None:
        self.providers = tuple(providers)
        self.capabilities = tuple(capabilities)
        known = {p.key for p in self.providers}
        for capability in self.capabilities:
            if capability.provider not in known:
                raise ValueError(f"capability {capability.key!r}: unknown provider")

    def provider(self, key: str) -> Provider:
        for provider in self.providers:
            if provider.key == key:
                return provider
        raise KeyError(key)

    def capabilities_using(self, provider_key: str, scope_name: str) -> list[Capability]:
        return [c for c in self.capabilities if c.provider == provider_key and scope_name in c.scopes]


CATALOG = Catalog(PROVIDERS.values(), CAPABILITIES.values())
# The catalog as a deployment with no overrides and no OAuth client sees it.
UNCONFIGURED = ResolvedCatalog(PROVIDERS)


def get_provider(key: str) -> Provider:
    """The provider as the catalog defines it (a deployment's overrides are in its ResolvedCatalog)."""
    return PROVIDERS[key]


def get_capability(key: str) -> Capability:
    return CAPABILITIES[key]


def minimal_scopes(provider: str, scopes: Iterable[str]) -> tuple[str, ...]:
    """Drop every scope another one in the set already grants; sorted, no duplicates."""
    wanted = set(scopes)
    known = {scope.name: scope for scope in PROVIDERS[provider].scopes}
    implied: set[str] = set()
    for name in wanted:
        if name not in known:
            raise KeyError(f"{provider} has no scope {name!r}")
        implied |= known[name].implies
    return tuple(sorted(wanted - implied))


def _capability_keys(steps: Iterable[Any]) -> list[str]:
    keys = []
    for step in steps:
        keys.append(step["capability"] if isinstance(step, Mapping) else str(step))
    return keys


def required_scopes(steps: Iterable[Any], trigger: Any = None) -> dict[str, tuple[str, ...]]:
    """The minimal scopes per OAuth provider that these steps (or capability keys) and the trigger need."""
    needed: dict[str, set[str]] = {}
    for key in _capability_keys(steps):
        capability = CAPABILITIES[key]
        if PROVIDERS[capability.provider].auth_kind is not AuthKind.OAUTH2:
            continue
        needed.setdefault(capability.provider, set()).update(capability.scopes)
    poll = poll_trigger_of(trigger)
    if poll is not None:
        needed.setdefault(poll.provider, set()).update(poll.scopes)
    return {provider: minimal_scopes(provider, scopes) for provider, scopes in sorted(needed.items())}


def required_providers(steps: Iterable[Any], trigger: Any = None) -> tuple[str, ...]:
    """Every provider the steps and the trigger use that the client must connect (not Hapex's own)."""
    providers = {CAPABILITIES[key].provider for key in _capability_keys(steps)}
    poll = poll_trigger_of(trigger)
    if poll is not None:
        providers.add(poll.provider)
    return tuple(sorted(p for p in providers if PROVIDERS[p].auth_kind is not AuthKind.HAPEX_KEY))
