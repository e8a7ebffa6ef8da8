"""A user's second factor (TOTP, RFC 6238): the secret is sealed by the vault and only checked here.

The intake may not hold the credential key, so it never stores or reads the secret: it asks the
agent to enrol a user (the agent draws the secret, seals it, and hands back the provisioning URI
once, for the QR code), to check a code, and to remove the factor.
"""
