"""OAuth consent, intake side: the authorization URL out, the callback checked on the way back.

The intake never sees a token: a checked callback yields the code and PKCE verifier, which
are forwarded to the agent service for the exchange.
"""
