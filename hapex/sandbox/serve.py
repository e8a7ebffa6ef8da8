"""Serving the sandbox: one process (its state is in memory), threaded, over the local TLS."""

from __future__ import annotations

import logging
import signal
import ssl
import threading

from werkzeug.serving import make_server

from hapex.sandbox import create_app
from hapex.settings import SandboxSettings

logger = logging.getLogger(__name__)


def serve(settings: SandboxSettings) -> int:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    host, _, port = settings.bind.rpartition(":")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # its request lines would carry codes in URLs
    server = make_server(host, int(port), create_app(settings), threaded=True, ssl_context=context)

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    return 0
