"""A state's online permit lookup for tests: an HTTP server on 127.0.0.1 that answers each permit
number with the JSON set for it in ``PermitRegistryHandler.answers`` (else "not_found"), and with
HTTP 500 for the number "500"."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit


class PermitRegistryHandler(BaseHTTPRequestHandler):
    answers: dict[str, dict[str, str]] = {}

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        number = query.get("number", [""])[0]
        if number == "500":
            self.send_response(500)
            self.end_headers()
            return
        body = json.dumps(self.answers.get(number, {"status": "not_found"})).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def permit_registry() -> Iterator[str]:
    """The registry running while the block runs; yields its lookup URL template (``{state}``, ``{number}``)."""
    server = HTTPServer(("127.0.0.1", 0), PermitRegistryHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/verify?state={{state}}&number={{number}}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
