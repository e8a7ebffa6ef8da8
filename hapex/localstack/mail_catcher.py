"""The local stack's mail catcher: an SMTP server on 127.0.0.1 that keeps every message as a file.

`make run` starts it and points the agent's HAPEX_SMTP_* settings at it, so that verification,
password-reset and notice emails work on a fresh machine: read them in `.data/mail/` (one `.eml`
file per message, newest last by name; any mail client or a text editor opens them). Nothing is
relayed anywhere. Local development only: it listens on loopback, without TLS or authentication.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

DEFAULT_PORT = 8025
LOCAL_SENDER = "Hapex (local) <hapex@localhost>"


class MailFolder:
    """aiosmtpd handler: each message accepted is written whole to its own file in the folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        name = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}.eml"
        path = self.folder / name
        temporary = path.with_suffix(".part")
        temporary.write_bytes(envelope.original_content or envelope.content)
        temporary.chmod(0o600)
        temporary.rename(path)  # a reader never sees half a message
        return "250 Message accepted for delivery"


def messages(folder: Path) -> list[Path]:
    """The caught messages, oldest first."""
    return sorted(folder.glob("*.eml"))


def start(folder: Path, port: int, host: str = "127.0.0.1") -> Any:
    """A running catcher (aiosmtpd Controller, in its own thread); `.stop()` ends it."""
    from aiosmtpd.controller import Controller

    # aiosmtpd logs every line of every message at DEBUG: the mail holds links with tokens.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    controller = Controller(MailFolder(folder), hostname=host, port=port)
    controller.start()
    return controller


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    controller = start(args.dir, args.port)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    print(f"hapex: mail    caught in {args.dir} (SMTP on 127.0.0.1:{args.port})", flush=True)
    stopped.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
