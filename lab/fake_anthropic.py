"""A local fake of the Anthropic Messages API (``POST /v1/messages``), for tests and benches.

The real SDK talks to it through ``ANTHROPIC_BASE_URL``, retries and timeouts included
(anthropic 2.x sends through httpx2, which respx cannot intercept). It answers from a
script of replies when one is given (the last one repeats; the agents' tests), and
otherwise with a valid tool call built from the request's own tool schema, so the whole
pipeline can run on it (``bench/faults.py``). ``storm(seconds)`` makes it fail for a while
as an overloaded API does: 429, 500, answers that never come, and garbage.
"""

import hashlib
import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "claude-sonnet-4-5-20250929"
REPLY_TEXT = (
    "Thank you for getting in touch. We have looked at your message and are working on it; "
    "we will write again as soon as we know more."
)
# What a request meets during a storm, drawn at random (weights).
STORM_FAULTS = {"rate_limited": 3, "server_error": 3, "hang": 1, "garbage": 2, "off_schema": 1}


def tool_reply(tool_input, *, model=MODEL, stop_reason="tool_use", content=None, name="classify") -> dict:
    """A Messages API answer holding one tool call (or ``content`` as given)."""
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content
        if content is not None
        else [{"type": "tool_use", "id": "toolu_01", "name": name, "input": tool_input}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 400, "output_tokens": 60},
    }


def api_error(status: int) -> dict:
    return {"type": "error", "error": {"type": "api_error", "message": f"fake {status}"}}


def schema_answer(request: dict) -> dict:
    """A tool call that fits the forced tool's input schema; labels vary with the ticket."""
    name = request.get("tool_choice", {}).get("name") or request["tools"][0]["name"]
    schema = next(tool["input_schema"] for tool in request["tools"] if tool["name"] == name)
    seed = int.from_bytes(hashlib.sha256(json.dumps(request["messages"]).encode()).digest()[:4], "big")
    tool_input = {}
    for key, prop in schema["properties"].items():
        if "enum" in prop:
            value = prop["enum"][seed % len(prop["enum"])]
        elif prop.get("type") == "string":
            text = REPLY_TEXT if key == "reply" else "The ticket's own words say so."
            value = text[: prop.get("maxLength")]
        elif prop.get("type") == "integer":
            value = prop.get("minimum", 0)
        elif prop.get("type") == "boolean":
            value = False
        else:
            value = []
        tool_input[key] = value
    return tool_reply(tool_input, name=name)


class FakeAnthropic:
    """Answers POST /v1/messages from a script of replies (the last one repeats) or, with no
    script, from the request's tool schema; keeps every request when ``keep_requests``."""

    def __init__(self, *, keep_requests: bool = True, hang_seconds: float = 10, seed: int = 0):
        self.script: list[tuple[int, dict | None, dict]] = []
        self.requests: list[dict] = []
        self.keep_requests = keep_requests
        self.hang_seconds = hang_seconds
        self.counts: Counter[str] = Counter()  # answers given, by kind
        self.release = threading.Event()
        self._storm_until = 0.0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                request = {"path": self.path, "headers": dict(self.headers), "json": json.loads(raw)}
                status, body, headers = fake._answer(request)
                if body is None:  # never answer: the client must time out
                    fake.release.wait(fake.hang_seconds)
                    return
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    # --- the script (tests) -----------------------------------------------------------

    def reply(self, status=200, body=None, **headers) -> None:
        self.script.append((status, body, {name.replace("_", "-"): v for name, v in headers.items()}))

    def hang(self) -> None:
        self.script.append((0, None, {}))

    # --- storms (benches) -------------------------------------------------------------

    def storm(self, seconds: float) -> None:
        """Fail every request for ``seconds`` from now (STORM_FAULTS), then answer again."""
        self._storm_until = time.monotonic() + seconds

    @property
    def storming(self) -> bool:
        return time.monotonic() < self._storm_until

    def _answer(self, request: dict) -> tuple[int, dict | bytes | None, dict]:
        with self._lock:
            if self.keep_requests:
                self.requests.append(request)
            number = len(self.requests) if self.keep_requests else sum(self.counts.values()) + 1
            if self.script:
                self.counts["scripted"] += 1
                return self.script[min(number, len(self.script)) - 1]
            if not self.storming:
                self.counts["ok"] += 1
                return 200, schema_answer(request["json"]), {}
            kinds = list(STORM_FAULTS)
            kind = self._random.choices(kinds, weights=[STORM_FAULTS[k] for k in kinds])[0]
            self.counts[kind] += 1
        if kind == "rate_limited":
            return 429, api_error(429), {"retry-after": "1"}
        if kind == "server_error":
            return 500, api_error(500), {}
        if kind == "hang":
            return 0, None, {}
        if kind == "garbage":
            return 200, b'{"id": "msg_01", "type": "message", "content": [{"type": "tool_u', {}
        answer = schema_answer(request["json"])  # a tool call outside its schema
        answer["content"][0]["input"] = {"unexpected": "field"}
        return 200, answer, {}

    # --- running --------------------------------------------------------------------

    def start(self) -> "FakeAnthropic":
        serve = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        serve.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
