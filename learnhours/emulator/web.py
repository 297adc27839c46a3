"""The small WSGI plumbing the portal emulator serves with: a request's form and cookies, a
response, and a server on loopback in a daemon thread."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class Request:
    def __init__(self, environ: dict[str, Any]) -> None:
        self.method = environ["REQUEST_METHOD"].upper()
        self.path = environ.get("PATH_INFO", "/")
        self.query = flat(parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        self.cookies = {k: m.value for k, m in cookie.items()}
        self.form: dict[str, str] = {}
        if self.method == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(size).decode("utf-8", "replace")
            self.form = flat(parse_qs(raw, keep_blank_values=True))


class Response:
    def __init__(
        self,
        body: str | bytes,
        *,
        status: str = "200 OK",
        content_type: str = "text/html; charset=utf-8",
    ) -> None:
        self.status = status
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.headers = [("Content-Type", content_type)]

    @property
    def body(self) -> bytes:
        return self._body

    @body.setter
    def body(self, value: str | bytes) -> None:
        self._body = value.encode("utf-8") if isinstance(value, str) else value

    @classmethod
    def redirect(cls, location: str) -> Response:
        resp = cls("", status="302 Found")
        resp.headers.append(("Location", location))
        return resp


def flat(parsed: dict[str, list[str]]) -> dict[str, str]:
    return {k: v[-1] for k, v in parsed.items()}




class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False  # a handler still sleeping for an injected delay must not block close

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client gave up (timeouts are part of the tests)


@contextmanager
def serve(app: Callable, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run a WSGI app on loopback in a daemon thread; yields its base URL ("http://…:port/")."""
    server = make_server(
        host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        daemon=True,
        name="portal-emulator",
    )
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=2)


