"""Passkeys (WebAuthn): registered, checked and removed here; the intake renders the pages.

The agent owns the passkey tables, as it owns the TOTP secret: it draws every challenge (kept as a
SHA-256 hash, bound to user and purpose, good once for five minutes), verifies every ceremony with
py_webauthn against the intake's configured origin (INTAKE_PUBLIC_URL, never a Host header), and
answers a sign-in with accepted or refused and the user it verified. Nothing stored is secret:
credential ids, public keys, signature counters, transports, labels and times.
"""
