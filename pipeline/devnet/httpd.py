"""HTTP transport of the devnet: a threaded stdlib server in front of :class:`NodeApi`.

GET and POST both work, parameters from the query string and/or a JSON body (as java-tron
accepts them); HTTP/1.1 keep-alive so a ``requests`` session (tronpy) reuses its connection.
Node-API requests first consume any injected fault (status, ``Retry-After``, delay); ``/devnet/…``
requests go to the control callback instead and are never faulted.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from pipeline.devnet.faults import REASONS, Faults
from pipeline.devnet.node import Answer, NodeApi

log = logging.getLogger(__name__)

Control = Callable[[str, dict[str, Any]], Answer]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve()

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._serve()

    def _params(self) -> dict[str, Any] | None:
        params: dict[str, Any] = dict(parse_qsl(urlsplit(self.path).query))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if body.strip():
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError:
                return None
            if isinstance(doc, dict):
                params.update(doc)
        return params

    def _serve(self) -> None:
        path = urlsplit(self.path).path
        params = self._params()
        headers: list[tuple[str, str]] = []
        if path.startswith("/devnet/"):
            answer = self.server.control(path[len("/devnet/"):], params or {})
        else:
            fault = self.server.faults.take()
            if fault.delay_s:
                time.sleep(fault.delay_s)
            if fault.status:
                reason = REASONS.get(fault.status, "Error")
                answer = Answer(fault.status, orjson.dumps({"Error": f"{fault.status} {reason} (devnet fault)"}))
                if fault.status in (429, 503):
                    headers.append(("Retry-After", f"{max(0, round(fault.retry_after))}"))
            elif params is None:
                answer = Answer(200, orjson.dumps({"Error": "class org.json.JSONException : invalid JSON body"}))
            else:
                answer = self.server.api.handle(path, params)
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)
        if answer.then is not None:
            self.wfile.flush()
            answer.then()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], api: NodeApi, faults: Faults, control: Control) -> None:
        super().__init__(addr, _Handler)
        self.api = api
        self.faults = faults
        self.control = control
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        with self._open_lock:
            self._open.add(sock)
        return sock, addr

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Cut every open keep-alive connection, as a node going down does."""
        with self._open_lock:
            socks, self._open = list(self._open), set()
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class HttpFront:
    """Runs the HTTP server in a background thread; ``start`` binds, ``stop`` closes the socket."""

    def __init__(self, api: NodeApi, faults: Faults, control: Control, host: str, port: int) -> None:
        self._args = (api, faults, control)
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        self._server = _Server((self.host, self.port), *self._args)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"devnet-http-{self.port}", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.drop_connections()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
