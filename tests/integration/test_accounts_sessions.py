"""Server-side sessions as a user, and someone holding an old cookie, meet them."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from tests.integration.conftest import PASSWORD, Visitor, new_email

OPEN_PAGES = {"/", "/security", "/data-and-privacy", "/privacy", "/terms", "/.well-known/security.txt", "/login",
              "/signup", "/healthz", "/readyz", "/password/forgot",
              # The code step of a sign-in: without the password step's note it sends to /login too.
              "/login/code",
              # A passkey's sign-in (instead of the password, or as that code step): before any session,
              # its forms carry the login page's CSRF token (test_accounts_passkeys.py).
              "/login/passkey", "/login/passkey/finish", "/login/code/passkey", "/login/code/passkey/finish",
              # A link from an account email: its token is the proof (test_accounts_email_links.py).
              "/email-link/<token>",
              # An automation's webhook trigger, /hooks/<secret>: called by other systems, no session.
              "/hooks/hapex.css"}


def session_rows(owner_conn, email: str) -> list[tuple]:
    return owner_conn.execute(
        """SELECT s.session_hash, s.expires_at - s.created_at FROM sessions s
           JOIN users u USING (client_id, user_id) WHERE u.email = %s""",
        [email],
    ).fetchall()


def test_a_new_client_is_signed_in_after_sign_up_and_sees_their_empty_automations(visitor):
    response = visitor.signup(new_email(), PASSWORD, business_name="Crumb & Co")
    assert response.status_code == 303
    assert response.headers["Location"] == "/automations"
    page = visitor.get("/automations")
    assert page.status_code == 200
    assert "You have no automations yet." in page.get_data(as_text=True)


def test_the_session_cookie_is_host_prefixed_secure_httponly_lax_and_domainless(visitor):
    response = visitor.signup(new_email(), PASSWORD)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("__Host-hapex_session="))
    attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "secure" in attributes
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert not any(a.startswith("domain") for a in attributes)


def test_the_database_holds_only_the_sha256_of_the_session_cookie(signed_up, owner_conn):
    visitor, email = signed_up
    token = visitor.session_cookie()
    assert token is not None and len(token) == 43
    rows = session_rows(owner_conn, email)
    assert [bytes(r[0]) for r in rows] == [hashlib.sha256(token.encode()).digest()]
    dump = owner_conn.execute("SELECT string_agg(t::text, ' ') FROM sessions t").fetchone()[0]
    assert token not in dump


def test_each_login_gets_a_fresh_session_id(signed_up):
    visitor, email = signed_up
    first = visitor.session_cookie()
    visitor.logout()
    assert visitor.login(email, PASSWORD).status_code == 303
    second = visitor.session_cookie()
    assert second and second != first
    attacker = Visitor(visitor.app)
    attacker.set_session_cookie(first)
    assert attacker.get("/automations").status_code == 303


def test_a_session_id_planted_before_login_is_not_adopted(intake_app, signed_up):
    victim_visitor, email = signed_up
    victim_visitor.logout()
    planted = "A" * 43
    victim = Visitor(intake_app)
    victim.set_session_cookie(planted)
    assert victim.login(email, PASSWORD).status_code == 303
    assert victim.session_cookie() != planted
    attacker = Visitor(intake_app)
    attacker.set_session_cookie(planted)
    assert attacker.get("/account").status_code == 303


def test_a_cookie_replayed_after_logout_is_refused(signed_up, intake_app, owner_conn):
    visitor, email = signed_up
    stolen = visitor.session_cookie()
    response = visitor.logout()
    assert response.status_code == 303
    assert session_rows(owner_conn, email) == []
    replay = Visitor(intake_app)
    replay.set_session_cookie(stolen)
    answer = replay.get("/account")
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/login"
    assert email not in answer.get_data(as_text=True)


def test_a_cookie_replayed_after_a_password_change_is_refused_on_every_device(signed_up, intake_app):
    visitor, email = signed_up
    laptop = Visitor(intake_app)
    laptop.login(email, PASSWORD)
    stolen_here, stolen_laptop = visitor.session_cookie(), laptop.session_cookie()
    new_password = "a different long passphrase"
    assert visitor.change_password(PASSWORD, new_password).status_code == 303
    # The browser that changed it stays signed in, under a new session id.
    assert visitor.session_cookie() not in (stolen_here, None)
    assert visitor.get("/account").status_code == 200
    for stolen in (stolen_here, stolen_laptop):
        replay = Visitor(intake_app)
        replay.set_session_cookie(stolen)
        assert replay.get("/account").status_code == 303
    assert laptop.get("/account").status_code == 303


def test_a_session_idle_past_its_limit_ends(signed_up, owner_conn):
    visitor, email = signed_up
    assert visitor.get("/account").status_code == 200
    owner_conn.execute(
        "UPDATE sessions SET last_seen_at = now() - interval '31 minutes', "
        "created_at = now() - interval '31 minutes'"
    )
    response = visitor.get("/account")
    assert response.status_code == 303
    assert session_rows(owner_conn, email) == []
    cleared = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("__Host-hapex_session=")]
    assert cleared and "expires=thu, 01 jan 1970" in cleared[0].lower()


def test_an_active_session_still_ends_at_its_absolute_limit(signed_up, owner_conn):
    visitor, email = signed_up
    owner_conn.execute(
        "UPDATE sessions SET created_at = now() - interval '12 hours 1 minute', "
        "last_seen_at = now() - interval '1 minute', expires_at = now() + interval '29 minutes'"
    )
    assert visitor.get("/account").status_code == 303
    assert session_rows(owner_conn, email) == []


def test_activity_extends_a_session_but_never_past_its_absolute_limit(signed_up, owner_conn):
    visitor, email = signed_up
    owner_conn.execute(
        "UPDATE sessions SET created_at = now() - interval '11 hours 50 minutes', "
        "last_seen_at = now() - interval '5 minutes'"
    )
    assert visitor.get("/account").status_code == 200
    (lifetime,) = [r[1] for r in session_rows(owner_conn, email)]
    assert lifetime.total_seconds() == pytest.approx(12 * 3600, abs=5)


def session_version(owner_conn, email: str) -> tuple[int, object]:
    """The row's xmin (a new one for every UPDATE) and its last_seen_at."""
    (row,) = owner_conn.execute(
        """SELECT s.xmin::text::bigint, s.last_seen_at FROM sessions s
           JOIN users u USING (client_id, user_id) WHERE u.email = %s""",
        [email],
    ).fetchall()
    return row[0], row[1]


def test_page_views_within_a_minute_of_the_last_touch_write_the_session_once(signed_up, owner_conn):
    visitor, email = signed_up
    just_signed_up = session_version(owner_conn, email)
    assert visitor.get("/account").status_code == 200
    assert visitor.get("/automations").status_code == 200
    assert session_version(owner_conn, email) == just_signed_up
    owner_conn.execute("UPDATE sessions SET last_seen_at = now() - interval '2 minutes'")
    stale = session_version(owner_conn, email)
    assert visitor.get("/account").status_code == 200
    touched = session_version(owner_conn, email)
    assert touched[0] != stale[0] and touched[1] > stale[1]
    assert visitor.get("/account").status_code == 200
    assert visitor.get("/automations").status_code == 200
    assert session_version(owner_conn, email) == touched


def test_a_session_idle_past_its_limit_ends_even_right_after_a_recent_touch(signed_up, owner_conn):
    visitor, email = signed_up
    assert visitor.get("/account").status_code == 200
    assert visitor.get("/account").status_code == 200
    owner_conn.execute("UPDATE sessions SET last_seen_at = now() - interval '30 minutes 5 seconds'")
    assert visitor.get("/account").status_code == 303
    assert session_rows(owner_conn, email) == []


def test_a_session_past_its_absolute_limit_ends_though_touched_seconds_ago(signed_up, owner_conn):
    visitor, email = signed_up
    owner_conn.execute(
        "UPDATE sessions SET created_at = now() - interval '12 hours 1 second', "
        "last_seen_at = now() - interval '10 seconds'"
    )
    assert visitor.get("/account").status_code == 303
    assert session_rows(owner_conn, email) == []


@pytest.mark.parametrize("cookie", ["", "x", "A" * 42, "A" * 44, "../../etc/passwd" + "A" * 27, "é" * 43])
def test_a_malformed_or_unknown_cookie_is_just_signed_out(intake_app, cookie):
    visitor = Visitor(intake_app)
    visitor.set_session_cookie(cookie)
    assert visitor.get("/account").status_code == 303
    assert visitor.get("/").status_code == 200


def test_logging_out_takes_a_post_not_a_link(signed_up):
    visitor, _ = signed_up
    assert visitor.get("/logout").status_code == 405
    assert visitor.get("/account").status_code == 200


def test_every_page_but_the_public_ones_sends_a_signed_out_visitor_to_log_in(intake_app):
    visitor = Visitor(intake_app)
    closed = 0
    for rule in intake_app.url_map.iter_rules():
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<uuid:{name}>", str(uuid.uuid4())).replace(f"<path:{name}>", "hapex.css")
        if rule.endpoint == "static" or path in OPEN_PAGES:
            continue
        closed += 1
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = visitor.client.open(path, method=method, base_url="https://intake.test")
            assert response.status_code == 303, (method, path)
            assert response.headers["Location"] == "/login", (method, path)
    assert closed >= 10
