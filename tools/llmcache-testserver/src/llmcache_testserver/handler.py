"""The HTTP/1.1 side of the server: stdlib ``http.server``, one daemon thread per connection,
keep-alive, chunked transfer encoding for NDJSON (and server-sent event) streams. What to
answer is `api`'s job, `anthropic_api`'s for ``/v1/messages`` and `openai_api`'s for the
other paths under ``/v1/``."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any
from urllib.parse import urlsplit

import orjson

from llmcache_testserver.anthropic_api import AnthropicAPI
from llmcache_testserver.api import ApiError, OllamaAPI, Reply, Streamed
from llmcache_testserver.openai_api import OpenAIAPI

__all__ = ["OllamaHTTPServer", "OllamaHandler"]

logger = logging.getLogger("llmcache_testserver")

_GET = {"/": "root", "/api/version": "version", "/api/tags": "tags"}
_POST = {
    "/api/generate": "generate",
    "/api/chat": "chat",
    "/api/embed": "embed",
    "/api/embeddings": "embeddings",
    "/api/show": "show",
}
_MAX_BODY = 64 * 1024 * 1024


class OllamaHandler(BaseHTTPRequestHandler):
    """Routes ``GET``/``HEAD``/``POST`` to the server's `OllamaAPI` and writes its answers."""

    protocol_version = "HTTP/1.1"
    server_version = "llmcache-ollama"
    sys_version = ""
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle plus the
    # client's delayed ACK would add ~40 ms to every reply.
    disable_nagle_algorithm = True
    # Idle keep-alive connections are closed after this many seconds.
    timeout = 60
    server: OllamaHTTPServer

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's naming
        self._dispatch(_GET)

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch(_GET)

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch(_POST)

    def _dispatch(self, routes: dict[str, str]) -> None:
        try:
            # Read the whole body first, even for a request we refuse, so the next request
            # on this keep-alive connection starts where it should.
            body = self._read_body()
        except ApiError as exc:
            self.close_connection = True
            self._reply(Reply(exc.status, {"error": exc.message}))
            return
        path = urlsplit(self.path).path.rstrip("/") or "/"
        if path == "/v1/messages" and self.server.anthropic is not None:
            self._anthropic(body)
            return
        if path == "/v1" or path.startswith("/v1/"):
            self._openai(path, body)
            return
        route = routes.get(path)
        if route is None:
            known = path in _GET or path in _POST
            status = 405 if known else 404
            text = b"405 method not allowed" if known else b"404 page not found"
            self._send(status, text, "text/plain; charset=utf-8")
            return
        try:
            answer = self.server.api.handle(route, body)
        except Exception as exc:  # an engine failure: Ollama answers 500 with the reason
            logger.exception("engine failed on %s", path)
            answer = Reply(500, {"error": str(exc) or type(exc).__name__})
        if isinstance(answer, Streamed):
            self._stream(answer.lines)
        else:
            self._reply(answer)

    def _openai(self, path: str, body: bytes | None) -> None:
        api = self.server.openai
        if api is None:
            self._send(404, b"404 page not found", "text/plain; charset=utf-8")
            return
        method = "GET" if self.command == "HEAD" else self.command
        try:
            answer = api.handle(method, path, body, self.headers.get("Authorization"))
        except Exception as exc:
            logger.exception("engine failed on %s", path)
            answer = Reply(
                500,
                {
                    "error": {
                        "message": str(exc) or type(exc).__name__,
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                },
            )
        if isinstance(answer, Streamed):
            self._stream(answer.lines, getattr(answer, "content_type", "application/x-ndjson"))
        else:
            self._reply(answer)

    def _anthropic(self, body: bytes | None) -> None:
        api = self.server.anthropic
        assert api is not None
        if self.command != "POST":
            self._send(405, b"405 method not allowed", "text/plain; charset=utf-8")
            return
        try:
            answer = api.handle(body, self.headers.get("x-api-key"))
        except Exception as exc:
            logger.exception("engine failed on /v1/messages")
            answer = Reply(
                500,
                {
                    "type": "error",
                    "error": {"type": "api_error", "message": str(exc) or type(exc).__name__},
                },
            )
        if isinstance(answer, Streamed):
            self._stream(answer.lines, getattr(answer, "content_type", "text/event-stream"))
        else:
            self._reply(answer)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return None
        try:
            size = int(length)
        except ValueError:
            raise ApiError(400, "invalid Content-Length") from None
        if not 0 <= size <= _MAX_BODY:
            raise ApiError(413, "request body too large")
        return self.rfile.read(size)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            try:
                size = int(self.rfile.readline(1024).split(b";")[0].strip(), 16)
            except ValueError:
                raise ApiError(400, "malformed chunked body") from None
            total += size
            if total > _MAX_BODY:
                raise ApiError(413, "request body too large")
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(16)  # the CRLF closing each chunk

    def _reply(self, reply: Reply) -> None:
        body = reply.body if isinstance(reply.body, bytes) else orjson.dumps(reply.body)
        self._send(reply.status, body, reply.content_type)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _stream(self, lines: Iterator[Any], content_type: str = "application/x-ndjson") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        cut = self.server.api.faults.disconnect_after
        try:
            for sent, line in enumerate(_guarded(lines)):
                if cut is not None and sent >= cut:
                    self._drop()
                    return
                self._chunk(line if isinstance(line, bytes) else orjson.dumps(line))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client went away; nothing more can be sent
            self.close_connection = True

    def _drop(self) -> None:
        """End the connection in the middle of a body (the ``disconnect_after`` fault)."""
        self.close_connection = True
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)

    def _chunk(self, line: bytes) -> None:
        data = line + b"\n"
        # One write per chunk: size line, data and CRLF leave in a single segment.
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


def _guarded(lines: Iterator[Any]) -> Iterator[Any]:
    """`lines`, with an engine failure turned into a last ``{"error"}`` line: after the 200
    has gone out, that is how Ollama reports it."""
    try:
        yield from lines
    except Exception as exc:
        logger.exception("engine failed mid-stream")
        yield {"error": str(exc) or type(exc).__name__}


class OllamaHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its open connections, so `close_connections`
    can end idle keep-alive threads at shutdown instead of leaving them blocked."""

    daemon_threads = True
    # Bursts of hundreds of simultaneous connects must queue, not be refused.
    request_queue_size = 1024

    def __init__(
        self,
        address: tuple[str, int],
        api: OllamaAPI,
        openai: OpenAIAPI | None = None,
        anthropic: AnthropicAPI | None = None,
    ) -> None:
        self.api = api
        self.openai = openai
        self.anthropic = anthropic
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, OllamaHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call socket.getfqdn(), a reverse DNS lookup that can
        # take seconds on machines without a resolver; the name is never used here.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    @property
    def open_connections(self) -> int:
        with self._open_lock:
            return len(self._open)

    def close_connections(self, wait: float = 2.0) -> None:
        """Shut every open connection down and wait (up to `wait` s) for their threads."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the peer
        deadline = time.monotonic() + wait
        while self.open_connections and time.monotonic() < deadline:
            time.sleep(0.01)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients dropping connections is routine for a test server; keep stderr quiet.
        logger.debug("error serving %s", client_address, exc_info=True)
