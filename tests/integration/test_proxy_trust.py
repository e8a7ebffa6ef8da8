"""X-Forwarded-* headers count only from the number of proxies the operator declared."""

from __future__ import annotations

from tests.integration.conftest import PASSWORD, Visitor, build_intake_app, new_email


def security_txt(visitor: Visitor, headers: dict[str, str]) -> str:
    return visitor.client.get("/.well-known/security.txt", base_url="https://intake.test", headers=headers,
                              environ_base={"REMOTE_ADDR": visitor.address}).get_data(as_text=True)


def test_security_txt_names_the_configured_public_url_whatever_host_the_request_claims(
        database, intake_db, agent_transport):
    app = build_intake_app(database, intake_db, agent_transport, trusted_proxy_count=1,
                           public_url="https://hapex.example")
    visitor = Visitor(app)
    for headers in ({"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"}, {"Host": "evil.example"}):
        text = security_txt(visitor, headers)
        assert "evil.example" not in text and "http://" not in text
        assert "Policy: https://hapex.example/security\n" in text
        assert "Canonical: https://hapex.example/.well-known/security.txt\n" in text


def test_without_a_public_url_security_txt_names_no_address_from_the_request(intake_app):
    visitor = Visitor(intake_app)
    text = security_txt(visitor, {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"})
    assert "intake.test" not in text and "evil.example" not in text
    assert text.startswith("Contact: mailto:")


def test_a_forged_forwarded_for_does_not_dodge_the_address_throttle(intake_app):
    visitor = Visitor(intake_app, address="198.51.100.20")
    statuses = []
    for attempt in range(25):
        response = visitor.client.post(
            "/login",
            data={"email": new_email(), "password": PASSWORD + "x", "csrf_token": visitor.csrf_token("/login")},
            base_url="https://intake.test",
            headers={"Referer": "https://intake.test/login", "X-Forwarded-For": f"192.0.2.{attempt}"},
            environ_base={"REMOTE_ADDR": visitor.address},
        )
        statuses.append(response.status_code)
    assert 429 in statuses[19:], statuses
