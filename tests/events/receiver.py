"""A webhook receiver for tests: a real HTTP server in a thread that verifies every request's
Standard Webhooks signature with the reference ``standardwebhooks`` library (not our code),
answers from a script, and records what it got."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering


@dataclass
class Received:
    headers: dict
    body: bytes
    verified: bool
    answered: int | None = None  # the status sent back; None while waiting (or never sent)

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def event(self) -> dict:
        return json.loads(self.body)


class Receiver:
    def __init__(self):
        self.secret = ""
        self.script: list[Answer] = []  # answers to the next requests, in order; then 200
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                try:
                    Webhook(receiver.secret).verify(body, headers)
                    verified = True
                except (WebhookVerificationError, ValueError):
                    verified = False
                with receiver._lock:
                    answer = receiver.script.pop(0) if receiver.script else Answer()
                    record = Received(headers, body, verified)
                    receiver.received.append(record)
                time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                    record.answered = answer.status
                except OSError:  # the sender is gone (killed, or it gave up waiting)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def receipts(self) -> list[Received]:
        """Requests that were verified and answered with a 2xx."""
        return [r for r in self.received if r.verified and r.answered is not None and 200 <= r.answered < 300]

    def start(self) -> "Receiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
