"""A scriptable HTTP server on 127.0.0.1 for node-client tests: real sockets, recorded requests.

``Server(route)`` calls ``route(path, headers, body)`` for every request; the route returns
``(status, headers, body)`` where ``body`` is bytes or an iterable of byte chunks (sent as they
come, chunked when no Content-Length is given), so a test can play a node that redirects, answers
too much, gzip-bombs or drips.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Answer = tuple[int, dict[str, str], bytes | Iterable[bytes]]
Route = Callable[[str, dict[str, str], bytes], Answer]


class Server:
    def __init__(self, route: Route) -> None:
        self.route = route
        self.requests: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.requests.append((self.path, headers))
                status, extra, payload = outer.route(self.path, headers, body)
                self.send_response(status)
                chunked = isinstance(payload, bytes) is False and "Content-Length" not in extra
                for k, v in extra.items():
                    self.send_header(k, v)
                if isinstance(payload, bytes) and "Content-Length" not in extra:
                    self.send_header("Content-Length", str(len(payload)))
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    if isinstance(payload, bytes):
                        self.wfile.write(payload)
                        return
                    for chunk in payload:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                        self.wfile.flush()
                    if chunked:
                        self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what a size cap does

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
