"""Outbound webhook: a signed JSON POST to the client's HTTPS address, never into a private network.

The address is checked twice: its DNS answers before the call, and the address the socket
actually connected to (so a name that re-resolves to 127.0.0.1 or 169.254.169.254 between
the check and the call is still refused). Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

from requests import Response, Session
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from agent_service.capabilities.base import (
    ProviderHTTP,
    ProviderRefused,
    ProviderTransient,
    StepContext,
    StepFailed,
    StepResult,
)
from agent_service.outbound_tls import OutboundTLSAdapter, keep_no_cookies
from shared.secret import Secret

SIGNATURE_HEADER = "X-Hapex-Signature"
IDEMPOTENCY_HEADER = "X-Hapex-Idempotency-Key"
MAX_BODY_BYTES = 1_000_000
# An answer up to this long is read and dropped, so that its connection is kept alive.
MAX_DRAINED_BYTES = 4096
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Ranges that carry or reach an IPv4 address, or are otherwise not public, which older
# Python `ipaddress` tables (before 3.11.10, CVE-2024-4032) call global: refused outright.
_NOT_PUBLIC = tuple(ipaddress.ip_network(n) for n in (
    "64:ff9b:1::/48",   # local-use NAT64 (RFC 8215)
    "::ffff:0:0:0/96",  # IPv4-translated (RFC 2765)
    "::/96",            # IPv4-compatible (deprecated)
    "fec0::/10",        # site-local (deprecated)
    "192.0.0.0/24",     # IETF protocol assignments
    "100.64.0.0/10",    # carrier-grade NAT
))

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(ProviderRefused):
    error_class = "webhook_address_refused"
    safe_message = ("The webhook address is in a private, loopback or link-local network; Hapex only calls "
                    "public addresses.")


def address_allowed(address: IPAddress, *, allow_loopback: bool = False) -> bool:
    """Public unicast only; IPv4 addresses embedded in IPv6 are judged as IPv4."""
    embedded: list[IPAddress] = []
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address_allowed(address.ipv4_mapped, allow_loopback=allow_loopback)
        if address.sixtofour is not None:
            embedded.append(address.sixtofour)
        if address.teredo is not None:
            embedded.extend(address.teredo)
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if allow_loopback and address.is_loopback:
        return True
    if any(address.version == net.version and address in net for net in _NOT_PUBLIC):
        return False
    if not address.is_global or address.is_multicast:
        return False
    return all(address_allowed(inner, allow_loopback=False) for inner in embedded)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the name resolves to now."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise ProviderTransient("The webhook's host name could not be resolved.") from None
    addresses = []
    for *_, sockaddr in answers:
        try:
            addresses.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
        except ValueError:
            raise AddressRefused() from None
    return addresses


def check_url(url: str, *, allow_loopback: bool = False) -> None:
    """Refuse anything but https to a host whose every address is public."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ProviderRefused("A webhook address must be an https:// URL.")
    if parts.username is not None or parts.password is not None:
        raise ProviderRefused("A webhook address must not carry a user name or password.")
    try:
        port = parts.port or 443
    except ValueError:
        raise ProviderRefused("The webhook address has an invalid port.") from None
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(parts.hostname)]
    except ValueError:
        addresses = resolve(parts.hostname, port)
    if not addresses or not all(address_allowed(a, allow_loopback=allow_loopback) for a in addresses):
        raise AddressRefused()


class _PublicHTTPSConnection(HTTPSConnection):
    allow_loopback = False

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        try:
            peer = ipaddress.ip_address(str(sock.getpeername()[0]).split("%", 1)[0])
        except (OSError, ValueError):
            peer = None
        if peer is None or not address_allowed(peer, allow_loopback=self.allow_loopback):
            sock.close()
            raise AddressRefused()
        return sock


class _LoopbackHTTPSConnection(_PublicHTTPSConnection):
    allow_loopback = True


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class _LoopbackHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _LoopbackHTTPSConnection


class _RefusedHTTPPool(HTTPConnectionPool):
    def _new_conn(self) -> Any:
        raise ProviderRefused("A webhook address must be an https:// URL.")


class PublicAddressAdapter(OutboundTLSAdapter):
    """An adapter whose connections refuse to talk to a non-public peer, verified with the bundle's one context."""

    def __init__(self, ca_bundle: str, *, allow_loopback: bool = False) -> None:
        self.allow_loopback = allow_loopback
        super().__init__(ca_bundle, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _RefusedHTTPPool,
            "https": _LoopbackHTTPSPool if self.allow_loopback else _PublicHTTPSPool,
        }


_sessions: dict[tuple[str, bool], Session] = {}
_sessions_lock = threading.Lock()


def public_session(ca_bundle: str, *, allow_loopback: bool = False) -> Session:
    """The process's session for webhooks: public addresses only, never through an environment proxy.

    Shared by every client's webhooks (a kept-alive connection is reused only for the same
    host and port, and every new one is checked again at connect time), so it keeps no cookies.
    """
    key = (ca_bundle, allow_loopback)
    session = _sessions.get(key)
    if session is None:
        with _sessions_lock:
            session = _sessions.get(key)
            if session is None:
                session = keep_no_cookies(Session())
                session.trust_env = False
                adapter = PublicAddressAdapter(ca_bundle, allow_loopback=allow_loopback)
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                session = _sessions[key] = session
    return session


def signature(key: Secret, body: bytes) -> str:
    """The value of X-Hapex-Signature: HMAC-SHA256 of the exact body bytes with the client's key."""
    secret = key.reveal()
    secret_bytes = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(secret_bytes, body, hashlib.sha256).hexdigest()


def post(ctx: StepContext, token: Secret | None, data: dict[str, Any]) -> StepResult:
    """POST the payload; the receiver verifies the signature and de-duplicates on the idempotency key."""
    if token is None or not token:
        raise StepFailed("The webhook has no signing key; add one on the connections page.")
    url = data["url"]
    check_url(url, allow_loopback=ctx.allow_loopback_webhooks)
    body = json.dumps(data["payload"], separators=(",", ":"), ensure_ascii=False, default=str).encode()
    if len(body) > MAX_BODY_BYTES:
        raise StepFailed("The webhook payload is larger than 1 MB.")
    session = public_session(ctx.http.verify, allow_loopback=ctx.allow_loopback_webhooks)
    http = ProviderHTTP(ctx.http.provider, verify=ctx.http.verify, session=session, timeout=ctx.http.timeout)
    try:
        # stream=True: the receiver's answer body is never read beyond a small declared length.
        response = http.request("POST", url, data=body, stream=True, headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(token, body),
            IDEMPOTENCY_HEADER: ctx.idempotency_key,
            "User-Agent": "Hapex-Webhook/1",
        })
        _finish(response)
    finally:
        ctx.http.calls += http.calls
    return StepResult({"status_code": response.status_code}, counts={"bytes": len(body)})


def _finish(response: Response) -> None:
    """Drain a short answer so that its connection serves the next call; hang up on anything else."""
    try:
        length = int(response.headers.get("Content-Length", ""))
    except ValueError:
        length = -1
    if 0 <= length <= MAX_DRAINED_BYTES and "Transfer-Encoding" not in response.headers:
        # Reads at most the declared length, then urllib3 returns the connection to the pool.
        response.raw.drain_conn()
    response.close()
