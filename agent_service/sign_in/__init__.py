"""Sign-in and passwords, checked where the intake cannot forge them (docs/client-proof.md).

Only the agent's role reads a password hash and starts a session: the intake hands over the
address and password it was sent, and gets back either the new session's secret (which it sets as
the cookie, and which is then the client's proof), or, for a user with a second factor, a pending
sign-in ticket that only a good code turns into a session. A compromised intake can then start a
session only for someone whose password it is typing in at that moment.
"""
