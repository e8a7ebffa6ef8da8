"""gunicorn settings for both services: TLS always, JSON logs, no query strings logged.

`hapex serve intake|agent` points gunicorn here and sets HAPEX_SERVICE, HAPEX_BIND,
TLS_CERT_FILE and TLS_KEY_FILE. Access lines are written by the apps themselves
(shared.access_log), which log the path without its query string.
"""

import errno
import os
import socket
import sys

service = os.environ.get("HAPEX_SERVICE", "hapex")
bind = [os.environ.get("HAPEX_BIND", "0.0.0.0:8443")]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = 5
# Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel spreads new
# connections evenly between them. With one shared socket, whichever worker wakes first takes
# them, and kept-alive connections could all stay with one process: half the throughput
# on two cores (measured: 314 against 612 signed-in pages/s, run to run).
reuse_port = True
timeout = 60
graceful_timeout = 20
proc_name = f"hapex-{service}"
# Two gunicorns share a machine locally; neither needs a runtime control socket.
control_socket_disable = True

certfile = os.environ.get("TLS_CERT_FILE")
keyfile = os.environ.get("TLS_KEY_FILE")
if not certfile or not keyfile:
    sys.stderr.write("hapex: TLS_CERT_FILE and TLS_KEY_FILE must be set: Hapex serves HTTPS only\n")
    raise SystemExit(2)

# Only the number of proxies the operator declared may set X-Forwarded-*; the app applies
# ProxyFix with TRUSTED_PROXY_COUNT, so gunicorn itself trusts none.
forwarded_allow_ips = ""
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "shared.structured_logging.JSONFormatter", "service": service},
    },
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
    },
    "root": {"handlers": ["stderr"], "level": loglevel.upper()},
    "loggers": {
        "gunicorn.error": {"handlers": ["stderr"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}


def on_starting(server):  # noqa: ARG001 - gunicorn's hook signature
    """With reuse_port a second server on the same address would share it silently; refuse
    to start instead, as a plain bind would, if anything already listens there."""
    for address in bind:
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - only probed, then closed
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        probe = socket.socket(family, socket.SOCK_STREAM)
        try:
            probe.bind((host, int(port)))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                sys.stderr.write(f"hapex: {address} is already in use; is another Hapex running?\n")
                raise SystemExit(1) from None
            raise
        finally:
            probe.close()
