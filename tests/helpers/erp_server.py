"""A stand-in for an ERP's webhook receiver, for the tests of the exemption feed: the request handler of
an HTTP server on 127.0.0.1.

Give each server its own subclass, so that tests do not share the plan and what was received:
``type("Erp", (ErpHandler,), {"plan": [...], "posts": [], "gets": []})``.
"""

from __future__ import annotations

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ErpHandler(BaseHTTPRequestHandler):
    """Answers each POST with the next planned (status, headers, delay); counts GETs separately."""

    plan: list[tuple[int, dict[str, str], float]] = []
    posts: list[bytes] = []
    gets: list[str] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        cls = type(self)
        cls.posts.append(body)
        status, headers, delay = cls.plan.pop(0) if cls.plan else (200, {}, 0.0)
        if delay:
            time.sleep(delay)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def do_GET(self) -> None:
        type(self).gets.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


class ErpServer(ThreadingHTTPServer):
    """The test ERP's server. A client that hangs up before the answer is written (the program stops
    reading once it has the status of a redirect) is not an error of the server: socketserver would
    print its BrokenPipeError traceback to the stderr that the tests read from the CLI."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)
