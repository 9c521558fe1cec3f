"""A local SMTP server that keeps every mail as an ``.eml`` file: ``make run``'s mail sink.

The launcher starts it (``python -m csai.mailsink --port N --folder var/mail``) and points
the product's mail settings at it, so a newcomer sees each reply that went out, and the
ticket page links to it (``tickets.selectors.message_mail_file``). Nothing is relayed anywhere.
A file is named after the mail's Message-ID; the same Message-ID again (a mail sent twice)
gets ``.2.eml``, ``.3.eml`` …, so a duplicate is never hidden.
"""

import argparse
import contextlib
import os
import re
import signal
import threading
import time
from email.parser import BytesHeaderParser
from pathlib import Path


def eml_name(message_id: str) -> str:
    """The file name of the mail with ``message_id`` (its first copy)."""
    return re.sub(r"[^A-Za-z0-9._@+-]", "_", message_id.strip().strip("<>"))[:200] + ".eml"


class EmlWriter:
    """aiosmtpd handler: each mail accepted is written to ``folder`` (never half a file)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's name
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode()
        message_id = BytesHeaderParser().parsebytes(content).get("Message-ID", "")
        self.write(message_id, content)
        return "250 Message accepted for delivery"

    def write(self, message_id: str, content: bytes) -> Path:
        base = eml_name(message_id) if message_id.strip() else f"no-message-id-{time.time_ns()}.eml"
        partial = self.folder / f".{base}.{os.getpid()}.{threading.get_ident()}.partial"
        partial.write_bytes(content)
        for copy in range(1, 1000):
            path = self.folder / (base if copy == 1 else base.replace(".eml", f".{copy}.eml"))
            try:
                os.link(partial, path)  # fails if the name is taken: never overwrites a mail
            except FileExistsError:
                continue
            partial.unlink()
            return path
        raise RuntimeError(f"too many copies of {base}")


def serve(*, host: str, port: int, folder: Path):
    """Start the sink in a background thread; returns its aiosmtpd ``Controller``, to ``.stop()``."""
    from aiosmtpd.controller import Controller  # only the sink process needs the SMTP server

    controller = Controller(EmlWriter(folder), hostname=host, port=port)
    controller.start()
    return controller


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--folder", type=Path, required=True)
    args = parser.parse_args()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    controller = serve(host=args.host, port=args.port, folder=args.folder)
    print(f"mail sink: SMTP on {args.host}:{args.port}, writing to {args.folder}", flush=True)
    try:
        while not stop.wait(1):
            pass
    finally:
        with contextlib.suppress(Exception):
            controller.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
