"""A client's account in a real browser, over TLS, with JavaScript switched off."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from argon2 import Type, extract_parameters
from playwright.sync_api import expect

from shared.db import Database, tenant_transaction
from tests.e2e.conftest import sign_up_and_log_in
from tests.factories import client_of, make_automation, make_connection

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a fresh and longer passphrase"


@pytest.fixture
def context_factory(browser, live_stack) -> Iterator:
    """Fresh browser contexts without JavaScript: the core flows must not need it."""
    contexts = []

    def new_context(**options):
        context = browser.new_context(base_url=live_stack.intake_url, java_script_enabled=False, **options)
        contexts.append(context)
        return context

    yield new_context
    for context in contexts:
        context.close()


def new_email() -> str:
    return f"e2e-{uuid.uuid4().hex[:10]}@example.com"


def sign_up(page, email: str, password: str = PASSWORD, business: str = "Crumb & Co", *, owner_dsn: str) -> None:
    sign_up_and_log_in(page, owner_dsn, email=email, password=password, business=business)


def log_in(page, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def log_out(page) -> None:
    page.get_by_role("button", name="Log out").click()


def path_of(page) -> str:
    return urlsplit(page.url).path


def session_cookie(context) -> dict | None:
    return next((c for c in context.cookies() if c["name"] == "__Host-hapex_session"), None)


def test_a_client_signs_up_logs_out_logs_in_changes_password_and_deletes_the_account(
    context_factory, owner, live_stack
):
    context = context_factory()
    page = context.new_page()
    email = new_email()

    sign_up(page, email, owner_dsn=live_stack.database.owner_dsn)
    assert path_of(page) == "/automations"
    expect(page.get_by_text("You have no automations yet.")).to_be_visible()
    cookie = session_cookie(context)
    assert cookie is not None
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    stored = owner.execute("SELECT password_hash FROM users WHERE email = %s", [email]).fetchone()[0]
    params = extract_parameters(stored)
    assert params.type is Type.ID and params.memory_cost >= 19 * 1024 and params.time_cost >= 2

    for name in ("Connections", "Runs", "Costs", "Account", "Automations"):
        page.get_by_role("link", name=name, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert page.get_by_text(email).count() == 0  # the automations page shows no account details

    log_out(page)
    assert path_of(page) == "/"
    assert session_cookie(context) is None
    page.goto("/account")
    assert path_of(page) == "/login"

    log_in(page, email, "not the right password")
    assert page.get_by_role("alert").inner_text() == "The email or password is incorrect."
    log_in(page, email, PASSWORD)
    assert path_of(page) == "/automations"

    page.goto("/account")
    expect(page.get_by_text(email)).to_be_visible()
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password, again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    assert path_of(page) == "/account"
    expect(page.get_by_text("Your password was changed")).to_be_visible()

    log_out(page)
    log_in(page, email, PASSWORD)
    assert path_of(page) == "/login"
    log_in(page, email, NEW_PASSWORD)
    assert path_of(page) == "/automations"

    client_id = client_of(owner, email)
    page.goto("/account")
    page.get_by_label("Your password", exact=True).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Delete my account and all its data").click()
    assert path_of(page) == "/"
    expect(page.get_by_text("Your account and everything it held have been deleted.")).to_be_visible()
    assert owner.execute("SELECT count(*) FROM clients WHERE client_id = %s", [client_id]).fetchone() == (0,)
    assert owner.execute("SELECT count(*) FROM sessions WHERE client_id = %s", [client_id]).fetchone() == (0,)
    log_in(page, email, NEW_PASSWORD)
    assert path_of(page) == "/login"
    assert PASSWORD not in live_stack.logs() and NEW_PASSWORD not in live_stack.logs()


def test_a_cookie_copied_before_logout_does_not_open_the_account_afterwards(context_factory, live_stack):
    victim = context_factory()
    page = victim.new_page()
    sign_up(page, new_email(), owner_dsn=live_stack.database.owner_dsn)
    stolen = session_cookie(victim)
    assert stolen is not None
    log_out(page)

    thief = context_factory()
    thief.add_cookies([stolen])
    thief_page = thief.new_page()
    thief_page.goto("/account")
    assert path_of(thief_page) == "/login"


def seed_pages_for(live_stack, owner, email: str) -> tuple[str, list[str]]:
    """An automation, a connection and a run for the client with this email; their URLs."""
    client_id = client_of(owner, email)
    name = f"Digest {uuid.uuid4().hex[:6]}"
    intake = Database(live_stack.database.intake_dsn, name="e2e-seed").open()
    agent = Database(live_stack.database.agent_dsn, name="e2e-seed").open()
    try:
        automation = make_automation(intake, client_id, name=name)
        connection = make_connection(agent, client_id, provider="slack", scopes=["chat:write"])
        with tenant_transaction(agent, client_id) as conn:
            run = conn.execute(
                "INSERT INTO runs (client_id, automation_id, automation_version, trigger_kind) "
                "VALUES (%s, %s, 1, 'manual') RETURNING run_id", [client_id, automation]).fetchone()[0]
    finally:
        intake.close()
        agent.close()
    return name, [f"/automations/{automation}", f"/connections/{connection}", f"/runs/{run}"]


def test_a_second_client_cannot_open_the_first_clients_pages_by_editing_ids(context_factory, owner, live_stack):
    first = context_factory().new_page()
    first_email = new_email()
    sign_up(first, first_email, business="First Ltd", owner_dsn=live_stack.database.owner_dsn)
    name, urls = seed_pages_for(live_stack, owner, first_email)
    for url in urls:
        response = first.goto(url)
        assert response is not None and response.status == 200, url
    first.goto("/automations")
    expect(first.get_by_text(name)).to_be_visible()

    second = context_factory().new_page()
    sign_up(second, new_email(), business="Second Ltd", owner_dsn=live_stack.database.owner_dsn)
    for url in urls:
        response = second.goto(url)
        assert response is not None and response.status == 404, url
        expect(second.get_by_role("heading", name="Not found")).to_be_visible()
        assert name not in second.content()
    for listing in ("/automations", "/connections", "/runs"):
        second.goto(listing)
        assert name not in second.content()


PUBLIC_PAGES = ["/", "/security", "/data-and-privacy", "/login", "/signup", "/no-such-page"]
PRIVATE_PAGES = ["/automations", "/connections", "/runs", "/costs", "/account"]


# Every attribute through which a page can make the browser fetch or send something.
REFERENCE_SELECTOR = ", ".join([
    "link[href]", "script[src]", "img[src]", "img[srcset]", "source[src]", "source[srcset]", "iframe[src]",
    "video[src]", "audio[src]", "embed[src]", "object[data]", "form[action]", "a[href]",
])
REFERENCES_JS = (
    "(selector) => Array.from(document.querySelectorAll(selector))"
    ".map(el => el.src || el.href || el.action || el.data || el.getAttribute('srcset'))"
)


def test_every_page_loads_nothing_from_any_other_origin(browser, live_stack, owner):
    origin = live_stack.intake_url
    same_origin = re.compile(re.escape(origin) + r"(/|$)")
    requested: list[str] = []
    referenced: list[str] = []
    csp_reports: list[str] = []
    context = browser.new_context(base_url=origin)  # JavaScript on: a script could fetch more
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    # The CSP would block a foreign load before any request leaves, so count its refusals too.
    page.on("console", lambda message: csp_reports.append(message.text)
            if "Content Security Policy" in message.text else None)

    def visit(path: str, status: int = 200) -> None:
        response = page.goto(path)
        assert response is not None and response.status == status, path
        referenced.extend(page.evaluate(REFERENCES_JS, REFERENCE_SELECTOR))

    try:
        for path in PUBLIC_PAGES:
            visit(path, 404 if path == "/no-such-page" else 200)
        email = new_email()
        sign_up(page, email, owner_dsn=live_stack.database.owner_dsn)
        _, details = seed_pages_for(live_stack, owner, email)
        for path in PRIVATE_PAGES + details:
            visit(path)
    finally:
        context.close()
    assert origin + "/static/hapex.css" in requested  # the listener does see sub-resources
    assert len(referenced) > 50
    assert sorted({url for url in requested if not same_origin.match(url)}) == []
    foreign = {url for url in referenced if not same_origin.match(url) and not url.startswith("mailto:")}
    assert sorted(foreign) == []
    assert csp_reports == []
