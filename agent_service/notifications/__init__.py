"""Notices to clients: written by database triggers when something needs them, shown in the
intake app, and emailed by a worker job when SMTP is configured. Never a secret, a token or
a client's content: each message is written from the notice's kind alone."""
