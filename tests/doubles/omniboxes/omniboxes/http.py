"""Shared HTTP plumbing of the test double: JSON handlers behind the x-api-key check, clean stops."""

from __future__ import annotations

import json
import signal
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from omniboxes import API_KEY


class JsonError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def serve(port: int, routes: dict, on_stop=None) -> None:
    """Serve routes {(method, path): handler(query) -> dict} on 0.0.0.0:port until SIGTERM or SIGINT."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            url = urlparse(self.path)
            handler = routes.get((method, url.path))
            try:
                if handler is None:
                    raise JsonError(404, "Not Found")
                if self.headers.get("x-api-key") != API_KEY:
                    raise JsonError(403, "Invalid API key")
                status, body = 200, handler({k: v[0] for k, v in parse_qs(url.query).items()})
            except JsonError as exc:
                status, body = exc.status, {"detail": exc.detail}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - http.server's names
            self._answer("GET")

        def do_POST(self):  # noqa: N802
            self._answer("POST")

        def log_message(self, fmt, *args):
            sys.stderr.write(f"{self.address_string()} {fmt % args}\n")

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    server.daemon_threads = True

    def stop(signum, frame):
        if on_stop:
            on_stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()


def call(method: str, url: str, timeout: float = 5.0) -> dict:
    """One JSON request with the API key; raises JsonError with the remote status on failure."""
    request = urllib.request.Request(url, method=method, headers={"x-api-key": API_KEY})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise JsonError(exc.code, exc.reason) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise JsonError(503, str(exc)) from exc
