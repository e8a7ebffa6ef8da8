"""Outbound HTTPS that loads its CA bundle once per process, and trusts nothing else.

Given `verify=<path>`, requests hands the path to urllib3, which loads the whole bundle into
a fresh context for every new connection (about 17 ms of CPU for certifi's). Here each
bundle is loaded once into one `ssl.SSLContext` that every connection shares; the adapter
never passes a path on to urllib3, and the context refuses to load more CAs or to lower
verification once built, so no later setting (REQUESTS_CA_BUNDLE included) can widen trust.

Callers still pass `verify=<the bundle's path>` on every request: the adapter refuses any
other value, so a request that asked for other trust fails instead of silently using ours.
"""

from __future__ import annotations

import os
import ssl
import sys
import threading
import weakref
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.exceptions import SSLError

from shared.errors import HapexError


class TrustMismatch(HapexError):
    name = "trust_mismatch"
    message = ("The request asked to verify against other CAs than its session trusts; only the session's bundle "
               "is used.")


class _PinnedContext(ssl.SSLContext):
    """A client context that, once its bundle is loaded, accepts no more CAs and no weaker verification."""

    _pinned = False

    def pin(self) -> None:
        self._pinned = True

    def load_verify_locations(self, *args: Any, **kwargs: Any) -> None:
        if self._pinned:
            raise TrustMismatch("The outbound TLS context already holds its CA bundle; it loads no other.")
        super().load_verify_locations(*args, **kwargs)

    def load_default_certs(self, purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH) -> None:
        if self._pinned:
            raise TrustMismatch("The outbound TLS context trusts its CA bundle only, not the system's.")
        super().load_default_certs(purpose)

    @property  # type: ignore[override]  # typeshed types the base's as int
    def verify_mode(self) -> ssl.VerifyMode:
        return super().verify_mode

    @verify_mode.setter
    def verify_mode(self, value: ssl.VerifyMode) -> None:
        # urllib3 sets this on every connection; it may only ever set what we built.
        if self._pinned and value != ssl.CERT_REQUIRED:
            raise TrustMismatch("The outbound TLS context always verifies certificates.")
        ssl.SSLContext.verify_mode.__set__(self, value)  # type: ignore[attr-defined]  # the C base's setter

    @property
    def check_hostname(self) -> bool:
        return super().check_hostname

    @check_hostname.setter
    def check_hostname(self, value: bool) -> None:
        if self._pinned and not value:
            raise TrustMismatch("The outbound TLS context always checks host names.")
        ssl.SSLContext.check_hostname.__set__(self, value)  # type: ignore[attr-defined]  # the C base's setter


_contexts: dict[str, ssl.SSLContext] = {}
_lock = threading.Lock()
_adapters: weakref.WeakSet[OutboundTLSAdapter] = weakref.WeakSet()


def _load(ca_bundle: str) -> ssl.SSLContext:
    context = _PinnedContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname on
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # What urllib3 would have set on its own context.
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_TICKET
    if sys.version_info >= (3, 13):
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN | ssl.VERIFY_X509_STRICT
    context.post_handshake_auth = True
    context.load_verify_locations(cafile=ca_bundle)
    context.pin()
    return context


def tls_context(ca_bundle: str) -> ssl.SSLContext:
    """The process's one verifying context for this bundle, loaded on first use.

    A changed bundle file is read again only by a new process (a restart), as for any config.
    """
    context = _contexts.get(ca_bundle)
    if context is None:
        with _lock:
            context = _contexts.get(ca_bundle)
            if context is None:
                context = _contexts[ca_bundle] = _load(ca_bundle)
    return context


class OutboundTLSAdapter(HTTPAdapter):
    """Verifies HTTPS with the bundle's one preloaded context; refuses requests that ask for other trust."""

    def __init__(self, ca_bundle: str, **kwargs: Any) -> None:
        self.ca_bundle = ca_bundle
        super().__init__(**kwargs)
        _adapters.add(self)

    def build_connection_pool_key_attributes(  # type: ignore[override]  # stubs say host and port are never None
            self, request: requests.PreparedRequest, verify: Any,
            cert: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        if verify != self.ca_bundle:
            raise TrustMismatch()
        if cert is not None:
            raise TrustMismatch("Outbound calls present no client certificate.")
        try:
            context = tls_context(self.ca_bundle)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise SSLError("The outbound CA bundle could not be loaded.", request=request) from exc
        parts = urlsplit(request.url or "")
        host = {"scheme": parts.scheme.lower(), "host": parts.hostname, "port": parts.port}
        # The context in the pool key: one pool per host for as long as the process lives.
        return host, {"ssl_context": context, "cert_reqs": "CERT_REQUIRED"}

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # requests would set the bundle's path on the pool here, and urllib3 would then load
        # it into the shared context for every new connection: the very cost this avoids.
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None


def keep_no_cookies(session: requests.Session) -> requests.Session:
    """A session shared by every client's calls must never carry one client's cookies to the next."""
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


def outbound_session(ca_bundle: str) -> requests.Session:
    """A session that ignores the environment, keeps no cookies, and verifies HTTPS with the
    bundle's one context."""
    session = requests.Session()
    session.trust_env = False
    session.mount("https://", OutboundTLSAdapter(ca_bundle))
    return keep_no_cookies(session)


def _after_fork_in_child() -> None:
    """A forked child shares the context (safe) but must not share its parent's sockets or a held lock."""
    global _lock
    _lock = threading.Lock()
    for adapter in list(_adapters):
        adapter.init_poolmanager(adapter._pool_connections, adapter._pool_maxsize,  # type: ignore[attr-defined]  # private
                                 block=adapter._pool_block)  # type: ignore[attr-defined]  # requests' pool settings


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
