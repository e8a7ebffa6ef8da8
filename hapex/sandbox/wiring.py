"""How the sandbox stands in for the catalog's providers: its client ids, secrets and endpoints.

The launcher and the sandbox both derive everything here from one local secret
(HAPEX_SANDBOX_SECRET in .data/secrets.env), so the services are told, through their usual
HAPEX_<PROVIDER>_* variables, exactly what the sandbox will accept. Nothing in intake/ or
agent_service/ imports this module: they only see the resulting configuration.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from shared.catalog import ENDPOINT_FIELDS, PROVIDERS, AuthKind, Provider, Revocation

# The OAuth providers the sandbox serves, in the order its index page lists them.
SANDBOXED_OAUTH = ("google", "slack", "microsoft", "notion", "hubspot")
# Hapex-key providers the sandbox stands in for (Claude).
SANDBOXED_HAPEX_KEY = ("anthropic",)
SANDBOX_LABEL = " (sandbox)"
SANDBOX_NAMES = {"anthropic": "Claude stand-in (sandbox)"}


def _derive(secret: str, purpose: str) -> str:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def client_id(provider: str) -> str:
    return f"hapex-sandbox-{provider}"


def client_secret(secret: str, provider: str) -> str:
    return "sbx-" + _derive(secret, f"client-secret:{provider}")[:40]


def anthropic_api_key(secret: str) -> str:
    return "sk-ant-sandbox-" + _derive(secret, "anthropic-key")[:40]


def provider_endpoints(base_url: str, provider: Provider) -> dict[str, str]:
    """The sandbox's endpoints for one provider, keyed by the catalog's ENDPOINT_FIELDS."""
    root = f"{base_url.rstrip('/')}/{provider.key}"
    if provider.auth_kind is AuthKind.HAPEX_KEY:
        return {"api_base_url": root}
    endpoints = {
        "authorization_url": f"{root}/oauth/authorize",
        "token_url": f"{root}/oauth/token",
        "issuer": root,
        "api_base_url": {"slack": f"{root}/api", "microsoft": f"{root}/v1.0", "notion": f"{root}/v1"}.get(
            provider.key, root),
    }
    if provider.revocation is Revocation.SLACK:
        endpoints["revocation_url"] = f"{root}/api/auth.revoke"
    elif provider.revocation is not Revocation.NONE:
        endpoints["revocation_url"] = f"{root}/oauth/revoke"
    return endpoints


def operator_configured(provider: Provider, environ: Mapping[str, str]) -> bool:
    """The operator set their own client id or an endpoint for this provider: theirs wins, whole."""
    names = [f"{provider.env_prefix}_{field.upper()}" for field in ENDPOINT_FIELDS]
    if provider.auth_kind is AuthKind.OAUTH2:
        names.append(f"{provider.env_prefix}_CLIENT_ID")
    if provider.auth_kind is AuthKind.HAPEX_KEY:
        names.append("ANTHROPIC_API_KEY")
    return any((environ.get(name) or "").strip() for name in names)


def sandbox_environment(base_url: str, secret: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The HAPEX_<PROVIDER>_* variables that point each provider the operator left alone at the sandbox."""
    env: dict[str, str] = {}
    for key in (*SANDBOXED_OAUTH, *SANDBOXED_HAPEX_KEY):
        provider = PROVIDERS[key]
        if operator_configured(provider, environ):
            continue
        for field, value in provider_endpoints(base_url, provider).items():
            env[f"{provider.env_prefix}_{field.upper()}"] = value
        env[f"{provider.env_prefix}_NAME"] = SANDBOX_NAMES.get(key, provider.name + SANDBOX_LABEL)
        if provider.auth_kind is AuthKind.OAUTH2:
            env[f"{provider.env_prefix}_CLIENT_ID"] = client_id(key)
            env[f"{provider.env_prefix}_CLIENT_SECRET"] = client_secret(secret, key)
        else:
            env["ANTHROPIC_API_KEY"] = anthropic_api_key(secret)
    return env
