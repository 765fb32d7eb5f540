"""A small, real HTTP server speaking Resend's `POST /emails`, for tests, benches and the local stack.

It checks `Authorization: Bearer <key>` (401 `missing_api_key`, 403 `invalid_api_key`), validates
the JSON body (`from`, `to`, `subject`, and `html` or `text`: else 422 `validation_error`), answers
`{"id": ...}`, and honours `Idempotency-Key` the way Resend does: the same key with the same body
replays the first response without a second delivery; while the first request with a key is still
being answered, a repeat gets 409 `concurrent_idempotent_requests`; the same key with a different
body gets 409 `invalid_idempotent_request`.

Control it in-process (`fail_next`, `delay_next`, `deliveries`, `requests`, `wait_for`) or over
HTTP (`GET /_deliveries`, `GET /_requests`, `GET /_stats`, `POST /_control`, `POST /_reset`).
Standalone: `python -m devstack.fake_resend --port 3030 --api-key re_test`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_API_KEY = "re_test_fake_key"
ERROR_NAMES = {
    400: "validation_error",
    401: "missing_api_key",
    403: "invalid_api_key",
    404: "not_found",
    409: "invalid_idempotent_request",
    422: "validation_error",
    429: "rate_limit_exceeded",
    500: "application_error",
    502: "application_error",
    503: "application_error",
}


@dataclass
class Delivery:
    """One accepted message (what a real provider would go on to deliver)."""

    id: str
    idempotency_key: str | None
    sender: str
    to: list[str]
    subject: str
    html: str | None
    text: str | None
    received_at: float
    body: dict[str, Any]


@dataclass
class RecordedRequest:
    """Every `POST /emails` received, with the status it was answered."""

    idempotency_key: str | None
    status: int
    outcome: str  # delivered, replayed, injected, rejected, conflict, unauthorized
    received_at: float


@dataclass
class _Failure:
    status: int
    name: str
    retry_after: float | None


@dataclass
class _Stored:
    fingerprint: str
    done: threading.Event = field(default_factory=threading.Event)
    status: int = 0
    body: bytes = b""


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the stdlib default (5) resets connections under a burst
    daemon_threads = True


class FakeResend:
    """The server and its state; `start()` serves on a loopback port from a daemon thread."""

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        keep_bodies: bool = True,
    ) -> None:
        self.api_key = api_key
        self.keep_bodies = keep_bodies
        self._lock = threading.Condition()
        self._failures: deque[_Failure] = deque()
        self._delays: deque[float] = deque()
        self._delay_all = 0.0
        self._deliveries: list[Delivery] = []
        self._requests: list[RecordedRequest] = []
        self._idempotency: dict[str, _Stored] = {}
        self._delivered_count = 0
        self._server = _Server((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeResend:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-resend", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeResend:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- control ----------------------------------------------------------------------------
    def fail_next(
        self, count: int = 1, status: int = 500, *, name: str | None = None, retry_after: float | None = None
    ) -> None:
        """Answer the next `count` authorised requests with this error (before idempotency)."""
        with self._lock:
            for _ in range(count):
                self._failures.append(
                    _Failure(status, name or ERROR_NAMES.get(status, "application_error"), retry_after)
                )

    def delay_next(self, count: int = 1, seconds: float = 1.0) -> None:
        """Hold the response of the next `count` accepted requests (after recording the delivery)."""
        with self._lock:
            self._delays.extend([seconds] * count)

    def set_delay(self, seconds: float) -> None:
        """Hold every accepted response this long (latency of a real provider)."""
        with self._lock:
            self._delay_all = seconds

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()
            self._delays.clear()
            self._delay_all = 0.0
            self._deliveries.clear()
            self._requests.clear()
            self._idempotency.clear()
            self._delivered_count = 0

    # --- inspection -------------------------------------------------------------------------
    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            outcomes: dict[str, int] = {}
            for request in self._requests:
                outcomes[request.outcome] = outcomes.get(request.outcome, 0) + 1
            return {
                "requests": len(self._requests),
                "deliveries": self._delivered_count,
                "outcomes": outcomes,
            }

    def wait_for(
        self, *, deliveries: int | None = None, requests: int | None = None, timeout: float = 10.0
    ) -> bool:
        """Block until at least this many deliveries / requests were seen; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                if (deliveries is None or self._delivered_count >= deliveries) and (
                    requests is None or len(self._requests) >= requests
                ):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)

    # --- the API ----------------------------------------------------------------------------
    def _record(self, key: str | None, status: int, outcome: str) -> None:
        self._requests.append(RecordedRequest(key, status, outcome, time.time()))
        self._lock.notify_all()

    def handle_send(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes]:
        key = headers.get("idempotency-key")
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return self._error_locked(
                key, 401, "missing_api_key", "Missing API key in the authorization header.", "unauthorized"
            )
        if auth[7:].strip() != self.api_key:
            return self._error_locked(key, 403, "invalid_api_key", "API key is invalid", "unauthorized")
        with self._lock:
            if self._failures:
                failure = self._failures.popleft()
                extra = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after is not None else {}
                self._record(key, failure.status, "injected")
                return failure.status, extra, _error_body(failure.status, failure.name, "Injected failure")
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("body must be an object")
        except ValueError:
            return self._error_locked(key, 422, "validation_error", "Invalid JSON body", "rejected")
        problem = _validate(body)
        if problem:
            return self._error_locked(key, 422, "validation_error", problem, "rejected")

        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        with self._lock:
            stored = self._idempotency.get(key) if key else None
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    self._record(key, 409, "conflict")
                    return (
                        409,
                        {},
                        _error_body(
                            409,
                            "invalid_idempotent_request",
                            "Same idempotency key used with a different request payload.",
                        ),
                    )
                if not stored.done.is_set():
                    self._record(key, 409, "conflict")
                    return (
                        409,
                        {},
                        _error_body(
                            409,
                            "concurrent_idempotent_requests",
                            "Same idempotency key used while original request is still in progress.",
                        ),
                    )
                self._record(key, stored.status, "replayed")
                return stored.status, {}, stored.body
            message_id = str(uuid.uuid4())
            to = body["to"] if isinstance(body["to"], list) else [body["to"]]
            self._deliveries.append(
                Delivery(
                    id=message_id,
                    idempotency_key=key,
                    sender=body["from"],
                    to=list(to),
                    subject=body["subject"],
                    html=body.get("html"),
                    text=body.get("text"),
                    received_at=time.time(),
                    body=body if self.keep_bodies else {},
                )
            )
            if not self.keep_bodies:  # benches: keep counts, not megabytes of HTML
                self._deliveries.clear()
            self._delivered_count += 1
            stored = _Stored(fingerprint)
            if key:
                self._idempotency[key] = stored
            delay = self._delays.popleft() if self._delays else self._delay_all
            self._record(key, 200, "delivered")
        if delay:
            time.sleep(delay)
        stored.status, stored.body = 200, json.dumps({"id": message_id}).encode()
        stored.done.set()
        return 200, {}, stored.body

    def _error_locked(
        self, key: str | None, status: int, name: str, message: str, outcome: str
    ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self._record(key, status, outcome)
        return status, {}, _error_body(status, name, message)

    def control(self, body: dict[str, Any]) -> None:
        if body.get("fail_next"):
            self.fail_next(
                int(body["fail_next"]), int(body.get("status", 500)), retry_after=body.get("retry_after")
            )
        if body.get("delay_next"):
            self.delay_next(int(body["delay_next"]), float(body.get("seconds", 1.0)))
        if "delay_all" in body:
            self.set_delay(float(body["delay_all"]))


def _error_body(status: int, name: str, message: str) -> bytes:
    return json.dumps({"statusCode": status, "name": name, "message": message}).encode()


def _looks_like_address(value: Any) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    address = value.rsplit("<", 1)[-1].rstrip(">").strip()
    local, _, domain = address.partition("@")
    return bool(local) and "." in domain and " " not in address


def _validate(body: dict[str, Any]) -> str | None:
    if not _looks_like_address(body.get("from")):
        return (
            "Invalid `from` field. The email address needs to follow the `email@example.com` or "
            "`Name <email@example.com>` format."
        )
    to = body.get("to")
    recipients = to if isinstance(to, list) else [to]
    if not recipients or len(recipients) > 50 or not all(_looks_like_address(r) for r in recipients):
        return (
            "Invalid `to` field. The email address needs to follow the `email@example.com` or "
            "`Name <email@example.com>` format."
        )
    subject = body.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        return "Missing `subject` field."
    if not body.get("html") and not body.get("text"):
        return "Missing `html` or `text` field."
    return None


def _handler_for(fake: FakeResend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the SDK's pooled client reuses connections
        disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall
        server_version = "FakeResend/1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client died waiting (kill tests)
                self.close_connection = True

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_POST(self) -> None:
            raw = self._body()
            if self.path == "/emails":
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra, body = fake.handle_send(headers, raw)
                self._send(status, body, extra)
            elif self.path == "/_control":
                fake.control(json.loads(raw or b"{}"))
                self._send(200, b'{"status":"ok"}')
            elif self.path == "/_reset":
                fake.reset()
                self._send(200, b'{"status":"ok"}')
            else:
                self._send(404, _error_body(404, "not_found", "The requested endpoint does not exist."))

        def do_GET(self) -> None:
            if self.path == "/_deliveries":
                payload = [asdict(d) for d in fake.deliveries]
                self._send(200, json.dumps(payload).encode())
            elif self.path == "/_requests":
                self._send(200, json.dumps([asdict(r) for r in fake.requests]).encode())
            elif self.path in ("/_stats", "/health"):
                self._send(200, json.dumps(fake.stats()).encode())
            else:
                self._send(404, _error_body(404, "not_found", "The requested endpoint does not exist."))

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Resend API on loopback")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3030)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--no-bodies", action="store_true", help="count deliveries without keeping them")
    args = parser.parse_args(argv)
    # One thread per keep-alive connection: with the default 5 ms GIL switch interval, ten busy
    # connections queue behind each other (a convoy); a short interval keeps answers prompt.
    sys.setswitchinterval(0.0002)
    fake = FakeResend(args.api_key, args.host, args.port, keep_bodies=not args.no_bodies)
    print(json.dumps({"event": "fake resend listening", "url": fake.url}), flush=True)
    try:
        fake._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake._server.server_close()


if __name__ == "__main__":
    main()
