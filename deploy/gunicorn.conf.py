"""gunicorn settings for both services: TLS in-process unless TLS_TERMINATION=proxy, JSON logs, no query strings.

`hapex serve intake|agent` points gunicorn here and sets HAPEX_SERVICE, HAPEX_BIND,
TLS_CERT_FILE and TLS_KEY_FILE. Access lines are written by the apps themselves
(shared.access_log), which log the path without its query string.
"""

import ssl
import sys

from hapex.settings import GunicornSettings
from shared.structured_logging import gunicorn_logconfig

settings = GunicornSettings.from_env()
service = settings.service
bind = [settings.bind]
workers = settings.workers
worker_class = "gthread"
threads = settings.threads
keepalive = 5
# Not reuse_port: it spreads kept-alive connections more evenly between the workers (see
# docs/capacity.md), but with it a worker holding a connection whose TLS handshake failed did
# not exit on Ctrl-C or SIGQUIT and was SIGKILLed after graceful_timeout (gunicorn 27.0.1).
timeout = 60
graceful_timeout = 20
proc_name = f"hapex-{service}"
# Two gunicorns share a machine locally; neither needs a runtime control socket.
control_socket_disable = True

# A client that opens a connection and stalls in the TLS handshake (a browser's speculative
# connection, a scanner) held a gthread worker's thread in a blocking read with no timeout: a stop
# then waited graceful_timeout for it and the worker was SIGKILLed. The handshake gets a bound;
# once it is done the socket is blocking again, as gunicorn expects.
HANDSHAKE_SECONDS = 5.0


class _HandshakeBoundedSocket(ssl.SSLSocket):
    def do_handshake(self, block: bool = False) -> None:
        super().do_handshake(block)
        self.settimeout(None)


class _HandshakeBoundedContext(ssl.SSLContext):
    sslsocket_class = _HandshakeBoundedSocket

    def wrap_socket(self, sock, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        sock.settimeout(HANDSHAKE_SECONDS)
        return super().wrap_socket(sock, *args, **kwargs)


def ssl_context(conf, default_ssl_context_factory):  # type: ignore[no-untyped-def]
    """gunicorn's own context (certificate, ALPN), with the handshake bounded."""
    context = default_ssl_context_factory()
    context.__class__ = _HandshakeBoundedContext
    return context


if settings.tls_by_proxy:
    # TLS_TERMINATION=proxy: the platform's balancer serves TLS and forwards plain HTTP to HAPEX_BIND, which
    # `hapex serve` allowed only on a private address; the apps refuse what the balancer did not get over HTTPS.
    certfile = keyfile = None
    del ssl_context
else:
    certfile = settings.tls_cert_file
    keyfile = settings.tls_key_file
    if not certfile or not keyfile:
        sys.stderr.write("hapex: TLS_CERT_FILE and TLS_KEY_FILE must be set: Hapex serves HTTPS only "
                         "(unless TLS_TERMINATION=proxy)\n")
        raise SystemExit(2)

# Only the number of proxies the operator declared may set X-Forwarded-*; the app applies
# ProxyFix with TRUSTED_PROXY_COUNT, so gunicorn itself trusts none.
forwarded_allow_ips = ""
accesslog = None
errorlog = "-"
loglevel = settings.log_level
# JSON lines through the same formatter, redactor and clamps as the apps (gunicorn's own DEBUG is
# clamped to INFO), and a logger that never writes what a client sent (hapex/gunicorn_logging.py).
logconfig_dict = gunicorn_logconfig(service, loglevel, settings.log_format)
logger_class = "hapex.gunicorn_logging.HapexGunicornLogger"


def pre_request(worker, req):
    """Replaces gunicorn's default, which logs the method and full path (a webhook's secret) at DEBUG."""
