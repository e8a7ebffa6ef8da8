"""The per-account lock holds against parallel guesses and look-alike spellings of the email."""

from __future__ import annotations

import threading

from tests.integration.conftest import PASSWORD, Visitor, new_email

# Bounds only a hang: the threads are waited for, however long a busy machine takes.
THREADS_HANG_AFTER = 600


def test_a_burst_of_parallel_guesses_gets_no_more_checks_than_the_limit(intake_app, signed_up):
    _, email = signed_up
    visitors = [Visitor(intake_app, address=f"198.51.100.{i}") for i in range(16)]
    tokens = [v.csrf_token("/login") for v in visitors]
    barrier = threading.Barrier(len(visitors))
    statuses: list[int] = []

    def guess(visitor: Visitor, token: str) -> None:
        barrier.wait()
        response = visitor.client.post("/login", data={"email": email, "password": "wrong guess 123",
                                                       "csrf_token": token},
                                       base_url="https://intake.test",
                                       headers={"Referer": "https://intake.test/login"},
                                       environ_base={"REMOTE_ADDR": visitor.address})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=guess, args=pair) for pair in zip(visitors, tokens, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREADS_HANG_AFTER)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    assert len(statuses) == 16
    assert statuses.count(400) <= 5, statuses
    assert statuses.count(429) >= 11, statuses
    fresh = Visitor(intake_app, address="203.0.113.99")
    assert fresh.login(email, PASSWORD).status_code == 429


def test_a_look_alike_non_ascii_spelling_of_the_email_is_refused_not_counted_elsewhere(intake_app):
    visitor = Visitor(intake_app)
    email = "victim-" + new_email()
    assert visitor.signup(email, PASSWORD).status_code == 303
    visitor.logout()
    attacker = Visitor(intake_app, address="192.0.2.50")
    for _ in range(5):
        attacker.login(email, "wrong guess 123")
    assert attacker.login(email, PASSWORD).status_code == 429
    variant = email.replace("i", "\u0130", 1)
    response = attacker.login(variant, PASSWORD)
    assert response.status_code in (400, 429)
    assert "Location" not in response.headers
