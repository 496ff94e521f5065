"""A real HTTP server on 127.0.0.1 that answers with recorded vendor responses (tests only).

The SDKs (alpaca-py over requests, yfinance over curl_cffi) run unmodified and talk HTTP to it;
only their base URLs are configured to point here. Recorded responses live under
tests/fixtures/http/ as one `routes.json` per vendor plus one file per response body, shaped as the
vendor answers (see tests/fixtures/http/README.md).

With `alpaca_keys`, a request to an Alpaca service carrying other keys gets Alpaca's recorded 401
(tests/fixtures/http/alpaca/unauthorized.json), as the real API answers refused keys.

A route matches a request by service (the first path segment: alpaca-data, alpaca-trading, yahoo),
method, path and a subset of query parameters (a null value means "must be absent"). The first
matching route wins. A route holds a list of responses served in turn; the last one repeats, so
[429, 200] is "rate limited once, then fine". Every request is recorded (method, service, path,
query, headers) for tests to inspect.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "http"
ALPACA_AUTH = ("APCA-API-KEY-ID", "APCA-API-SECRET-KEY")


@dataclass
class Recorded:
    """One recorded answer: status, headers and the body file it came from."""

    status: int
    headers: dict[str, str]
    body: bytes
    delay: float = 0.0  # seconds to wait before answering (timeout tests)


@dataclass
class Route:
    """Requests it answers and the answers it gives, in turn."""

    service: str
    method: str
    path: str
    query: dict[str, str | None]
    responses: list[Recorded]
    hits: int = 0

    def matches(self, service: str, method: str, path: str, query: dict[str, str]) -> bool:
        if (service, method, path) != (self.service, self.method, self.path):
            return False
        for key, wanted in self.query.items():
            if wanted is None:
                if key in query:
                    return False
            elif query.get(key) != wanted:
                return False
        return True

    def next_response(self) -> Recorded:
        response = self.responses[min(self.hits, len(self.responses) - 1)]
        self.hits += 1
        return response


@dataclass
class Seen:
    """One request the server received."""

    method: str
    service: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int = 0


def _load_routes(vendor: str) -> list[Route]:
    folder = FIXTURES / vendor
    routes = []
    for entry in json.loads((folder / "routes.json").read_text())["routes"]:
        responses = []
        for answer in entry["responses"]:
            body = (folder / answer["body"]).read_bytes() if answer.get("body") else b""
            headers = {"Content-Type": "application/json; charset=utf-8", **answer.get("headers", {})}
            responses.append(Recorded(answer["status"], headers, body, answer.get("delay", 0.0)))
        routes.append(Route(entry["service"], entry.get("method", "GET"), entry["path"], entry.get("query", {}),
                            responses))
    return routes


@dataclass
class ReplayServer:
    """The server, its routes, and what it saw. Start with `replay_server()`."""

    routes: list[Route]
    alpaca_keys: tuple[str, str] | None = None  # when set, alpaca requests must carry exactly these
    unauthorized: Recorded | None = None  # Alpaca's answer to any other keys
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def service_url(self, service: str) -> str:
        """Base URL of one recorded service, e.g. `http://127.0.0.1:PORT/alpaca-data`."""
        return f"{self.url}/{service}"

    def add_route(self, service: str, path: str, *bodies: str, vendor: str = "alpaca", status: int = 200,
                  query: dict[str, str | None] | None = None) -> None:
        """Answer `path` from now on with these recorded bodies (files under fixtures/http/<vendor>/), in turn.

        The route goes first, so it wins over the recorded ones: a test changes what the vendor answers
        when something happened on its side (a fill was executed).
        """
        folder = FIXTURES / vendor
        responses = [Recorded(status, {"Content-Type": "application/json; charset=utf-8"}, (folder / body).read_bytes())
                     for body in bodies]
        with self._lock:
            self.routes.insert(0, Route(service, "GET", path, query or {}, responses))

    def hits(self, service: str, path: str, **query: str) -> list[Seen]:
        """Requests to `path` of `service` whose query holds every given parameter."""
        return [s for s in self.seen if s.service == service and s.path == path
                and all(s.query.get(k) == v for k, v in query.items())]

    def answer(self, method: str, raw_path: str, headers: dict[str, str]) -> Recorded:
        parts = urlsplit(raw_path)
        service, _, rest = parts.path.lstrip("/").partition("/")
        path = "/" + rest
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        seen = Seen(method, service, path, query, headers)
        with self._lock:
            self.seen.append(seen)
            if service.startswith("alpaca") and self.alpaca_keys is not None and self.unauthorized is not None:
                sent = tuple(headers.get(h.lower(), "") for h in ALPACA_AUTH)
                if sent != self.alpaca_keys:
                    seen.status = self.unauthorized.status
                    return self.unauthorized
            for route in self.routes:
                if route.matches(service, method, path, query):
                    response = route.next_response()
                    seen.status = response.status
                    return response
        seen.status = 404
        return Recorded(404, {"Content-Type": "application/json"}, json.dumps(
            {"error": f"no recorded response for {method} {service}{path}"}).encode())


def _handler(server_state: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self._serve("POST")

        def _serve(self, method: str) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            response = server_state.answer(method, self.path, headers)
            if response.delay:
                threading.Event().wait(response.delay)
            try:
                self.send_response(response.status)
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def replay_server(*vendors: str, alpaca_keys: tuple[str, str] | None = None) -> Iterator[ReplayServer]:
    """Serve the recorded routes of `vendors` (default: alpaca and yahoo) on a free local port."""
    routes = [route for vendor in (vendors or ("alpaca", "yahoo")) for route in _load_routes(vendor)]
    unauthorized = Recorded(401, {"Content-Type": "application/json; charset=utf-8"},
                            (FIXTURES / "alpaca" / "unauthorized.json").read_bytes())
    state = ReplayServer(routes, alpaca_keys, unauthorized)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), name="http-replay", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
