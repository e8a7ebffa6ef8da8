"""Team members: an owner invites by email, the invitee joins the same client with a user of their
own; an attacker's tries: a member trying owner actions, an invitation opened by another signed-in
account or used twice, a removed member's old session cookie."""

from __future__ import annotations

from tests.integration.conftest import PASSWORD, Visitor, new_email
from tests.integration.test_accounts_email_links import mailbox  # noqa: F401 - a fixture

INVITATION = "You are invited to join a team on Hapex"
MEMBER_PASSWORD = "the member's own passphrase"  # noqa: S105 - a test's password


def invite(owner: Visitor, email: str, role: str = "member"):
    return owner.post("/account/members/invite", {"email": email, "role": role}, token_from="/account/members")


def join(app, box, email: str, *, address: str = "192.0.2.150") -> Visitor:
    path = box.link_path(email, INVITATION)
    person = Visitor(app, address=address)
    page = person.get(path).get_data(as_text=True)
    assert "Join your team on Hapex" in page and ">Join the team</button>" in page
    accepted = person.post(path, {"new_password": MEMBER_PASSWORD, "confirm_password": MEMBER_PASSWORD},
                           token_from=path)
    assert accepted.status_code == 303 and accepted.headers["Location"] == "/login"
    assert person.login(email, MEMBER_PASSWORD).status_code == 303
    return person


def test_an_invited_person_joins_the_same_client_with_a_user_of_their_own(
        intake_app, signed_up, mailbox, owner_conn):  # noqa: F811
    owner, owner_email = signed_up
    member_email = new_email()
    assert invite(owner, member_email).status_code == 303
    assert Visitor(intake_app).login(member_email, "anything at all, really").status_code == 400
    member = join(intake_app, mailbox, member_email)
    rows = owner_conn.execute("SELECT client_id, user_id, role, email_verified_at IS NOT NULL FROM users "
                              "ORDER BY created_at").fetchall()
    assert len(rows) == 2 and rows[0][0] == rows[1][0] and rows[0][1] != rows[1][1]
    assert [r[2] for r in rows] == ["owner", "member"] and rows[1][3] is True
    assert member.get("/automations").status_code == 200
    page = member.get("/account/members").get_data(as_text=True)
    assert owner_email in page and "Send the invitation" not in page
    assert '<a href="/account">← Account</a>' in page


def test_a_member_gets_403_for_every_owner_action(intake_app, signed_up, mailbox, owner_conn):  # noqa: F811
    owner, _ = signed_up
    member_email = new_email()
    invite(owner, member_email)
    member = join(intake_app, mailbox, member_email)
    owner_id = owner_conn.execute("SELECT user_id FROM users WHERE role = 'owner'").fetchone()[0]
    tries = [
        member.post("/account/members/invite", {"email": new_email(), "role": "owner"}, token_from="/account"),
        member.post(f"/account/members/{owner_id}/remove", {}, token_from="/account"),
        member.post(f"/account/members/{owner_id}/role", {"role": "member"}, token_from="/account"),
        member.post("/account/delete", {"password": MEMBER_PASSWORD}, token_from="/account"),
        member.post("/costs/budget", {"budget": "50"}, token_from="/account"),
    ]
    assert [t.status_code for t in tries] == [403] * 5
    assert owner_conn.execute("SELECT count(*), count(*) FILTER (WHERE role = 'owner') FROM users").fetchone() == (2, 1)
    assert owner_conn.execute("SELECT count(*) FROM clients").fetchone() == (1,)


def test_removing_a_member_ends_their_sessions_at_once(intake_app, signed_up, mailbox, owner_conn):  # noqa: F811
    owner, _ = signed_up
    member_email = new_email()
    invite(owner, member_email)
    member = join(intake_app, mailbox, member_email)
    old_cookie = member.session_cookie()
    member_id = owner_conn.execute("SELECT user_id FROM users WHERE role = 'member'").fetchone()[0]
    assert owner.post(f"/account/members/{member_id}/remove", {}, token_from="/account/members").status_code == 303
    thief = Visitor(intake_app, address="198.51.100.77")
    thief.set_session_cookie(old_cookie or "")
    assert thief.get("/automations").status_code == 303
    assert owner_conn.execute("SELECT count(*) FROM sessions WHERE user_id = %s", [member_id]).fetchone() == (0,)
    assert Visitor(intake_app).login(member_email, MEMBER_PASSWORD).status_code == 400


def test_an_invitation_opened_by_another_signed_in_account_changes_nothing(
        intake_app, signed_up, mailbox, owner_conn):  # noqa: F811
    owner, _ = signed_up
    member_email = new_email()
    invite(owner, member_email)
    path = mailbox.link_path(member_email, INVITATION)
    other = Visitor(intake_app, address="192.0.2.160")
    other.signup(new_email(), PASSWORD, business_name="Other Ltd")
    assert other.get(path).status_code == 409
    posted = other.post(path, {"new_password": MEMBER_PASSWORD, "confirm_password": MEMBER_PASSWORD},
                        token_from="/account")
    assert posted.status_code == 409
    assert Visitor(intake_app).login(member_email, MEMBER_PASSWORD).status_code == 400
    join(intake_app, mailbox, member_email)  # the invitee's own use still works
    twice = Visitor(intake_app).get(path)
    assert twice.status_code == 410


def test_inviting_an_address_with_an_account_answers_alike_and_tells_that_address(
        intake_app, signed_up, mailbox, owner_conn):  # noqa: F811
    owner, _ = signed_up
    elsewhere = new_email()
    Visitor(intake_app, address="192.0.2.170").signup(elsewhere, PASSWORD, business_name="Elsewhere")
    taken = invite(owner, elsewhere)
    fresh = invite(owner, new_email())
    assert taken.status_code == fresh.status_code == 303 and taken.headers["Location"] == fresh.headers["Location"]
    assert "An invitation to Hapex could not be used" in [m["Subject"] for m in mailbox.to(elsewhere)]
    assert owner_conn.execute("SELECT count(*) FROM users WHERE email = %s", [elsewhere]).fetchone() == (1,)


def test_an_owner_cannot_remove_or_demote_themself(signed_up, owner_conn):
    owner, _ = signed_up
    me = owner_conn.execute("SELECT user_id FROM users").fetchone()[0]
    assert owner.post(f"/account/members/{me}/remove", {}, token_from="/account/members").status_code == 400
    demoted = owner.post(f"/account/members/{me}/role", {"role": "member"}, token_from="/account/members")
    assert demoted.status_code == 400
    assert owner_conn.execute("SELECT role FROM users").fetchone() == ("owner",)


def test_forged_posts_to_the_team_routes_change_nothing(intake_app, signed_up, owner_conn):
    from tests.integration.conftest import BASE_URL

    owner, _ = signed_up
    me = owner_conn.execute("SELECT user_id FROM users").fetchone()[0]
    for route in ("/account/members/invite", f"/account/members/{me}/remove", f"/account/members/{me}/role",
                  "/account/sessions/end-all"):
        answer = owner.client.post(route, data={"email": new_email(), "role": "member"}, base_url=BASE_URL,
                                   headers={"Referer": BASE_URL + "/"})
        assert answer.status_code == 400, route
    assert owner_conn.execute("SELECT count(*), min(role) FROM users").fetchone() == (1, "owner")
    assert owner.get("/account").status_code == 200  # the session survived the forged sign-out


def test_the_account_page_lists_my_sessions_and_signs_out_everywhere(intake_app, signed_up, owner_conn):
    browser, email = signed_up
    phone = Visitor(intake_app, address="192.0.2.180")
    phone.client.environ_base["HTTP_USER_AGENT"] = (
        "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Mobile Safari/537.36")
    assert phone.login(email, PASSWORD).status_code == 303
    page = browser.get("/account").get_data(as_text=True)
    assert "Chrome on Android" in page
    assert "Mozilla/5.0" not in page
    assert owner_conn.execute("SELECT device FROM sessions WHERE device LIKE %s", ["%Mozilla%"]).fetchall() == []
    ended = browser.post("/account/sessions/end-all", {}, token_from="/account")
    assert ended.status_code == 303 and ended.headers["Location"] == "/login"
    assert phone.get("/account").status_code == 303 and browser.get("/account").status_code == 303
    assert owner_conn.execute("SELECT count(*) FROM sessions").fetchone() == (0,)
