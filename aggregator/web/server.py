"""A small threaded server for ``aggregator serve``: stdlib wsgiref, one thread per request.

Logging goes through ``logging`` (``aggregator.web`` for errors, ``aggregator.web.access``
for one line per request), never straight to stderr, and never with a query string:
unsubscribe URLs carry a token, which is a credential and names an address.
"""

from __future__ import annotations

import logging
import re
import signal
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from types import FrameType, TracebackType
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer
from wsgiref.types import WSGIApplication

REQUEST_TIMEOUT_SECONDS = 30

_log = logging.getLogger("aggregator.web")
_access_log = logging.getLogger("aggregator.web.access")
_QUERY = re.compile(r"\?[^\s'\"]*")


def make_server(app: WSGIApplication, host: str, port: int) -> WSGIServer:
    """A bound, not yet running server (port 0 picks a free port: see ``server_port``).

    Run it with ``serve_forever()``; stop it with ``shutdown()`` from another thread, then
    ``server_close()``.
    """
    server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
    server = server_class((host, port), _RequestHandler)
    server.set_app(app)
    return server


def server_url(server: WSGIServer) -> str:
    host = server.server_name
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{server.server_port}/"


def serve(
    app: WSGIApplication,
    host: str,
    port: int,
    *,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``app`` until KeyboardInterrupt or SIGTERM; ``ready`` gets the URL once bound."""
    server = make_server(app, host, port)
    try:
        with _sigterm_as_interrupt():
            if ready is not None:
                ready(server_url(server))
            server.serve_forever()
    except KeyboardInterrupt:
        _log.info("web server stopping")
    finally:
        server.server_close()


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    # serve_forever blocks the main thread; raising from the handler is what breaks it out
    # (shutdown() from the same thread would wait for itself). Signals reach only the main
    # thread, so elsewhere (tests) there is nothing to install.
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # an open keep-alive or slow client must not block exit
    block_on_close = False

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks DNS for the host's FQDN, which can stall start-up for
        # seconds where DNS is slow or absent; the name is only used for SERVER_NAME.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
        self.setup_environ()

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.exception("error while handling a request from %s", client_address[0])


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class _ServerHandler(ServerHandler):
    server_software = "aggregator"  # the Server header; the default advertises versions

    def log_exception(
        self,
        exc_info: tuple[type[BaseException], BaseException, TracebackType]
        | tuple[None, None, None],
    ) -> None:
        _log.error("unhandled error in the web app", exc_info=exc_info)


class _RequestHandler(WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT_SECONDS  # a client that stalls mid-request frees its thread
    server_version = "aggregator"
    sys_version = ""

    def handle(self) -> None:
        # WSGIRequestHandler.handle, but declaring wsgi.multithread truthfully and logging
        # application errors through ``logging``.
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = ""
            self.request_version = ""
            self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _ServerHandler(
            self.rfile,
            self.wfile,  # type: ignore[arg-type]  # typeshed: BufferedIOBase vs IO[bytes]
            self.get_stderr(),
            self.get_environ(),
            multithread=True,
        )
        handler.request_handler = self  # type: ignore[attr-defined]  # wsgiref's log hook
        handler.run(self.server.get_app())  # type: ignore[attr-defined]

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Also called for requests too broken to parse, before path and command are set.
        path = str(getattr(self, "path", "-")).split("?", 1)[0]
        command = getattr(self, "command", None) or "-"
        status = code.value if isinstance(code, HTTPStatus) else code
        _access_log.info("%s %s %s %s %s", self.client_address[0], command, path, status, size)

    def log_message(self, format: str, *args: Any) -> None:
        # Reached for protocol errors, whose messages quote the raw request line.
        _log.warning("%s: %s", self.client_address[0], _QUERY.sub("?…", format % args))
