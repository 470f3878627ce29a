"""The web app: ``output/`` served read-only, and the unsubscribe endpoint.

``make_app`` builds a plain WSGI application from explicit arguments (no config, no
environment), so ``aggregator serve`` and any WSGI server can mount it; ``serve`` and
``make_server`` run it on the stdlib's wsgiref with a thread per request.

    /unsubscribe?token=…   GET/HEAD: confirmation page; POST: unsubscribe (RFC 8058)
    /anything-else         a file from output_dir (GET/HEAD), "/" and "dir/" → index.html
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from aggregator.web.responses import send
from aggregator.web.server import make_server, serve, server_url
from aggregator.web.static import static_response
from aggregator.web.unsubscribe import Unsubscriber, unsubscribe_response

__all__ = ["Unsubscriber", "WSGIApplication", "make_app", "make_server", "serve", "server_url"]

UNSUBSCRIBE_PATH = "/unsubscribe"


def make_app(
    output_dir: Path, *, secret: bytes | None, unsubscriber: Unsubscriber | None
) -> WSGIApplication:
    """A WSGI app serving ``output_dir`` and, given both ``secret`` (the
    AGGREGATOR_SECRET_KEY bytes) and ``unsubscriber``, the unsubscribe endpoint; without
    either, unsubscribe links get a 503 page saying so while static files are still served.

    ``output_dir`` need not exist yet (everything is 404 until publish writes it).
    """
    root = Path(output_dir)
    key = secret or None  # an empty key would sign forgeable tokens: treat it as no key

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == UNSUBSCRIBE_PATH:
            response = unsubscribe_response(environ, secret=key, unsubscriber=unsubscriber)
        else:
            response = static_response(root, environ)
        return send(response, start_response, head=environ.get("REQUEST_METHOD") == "HEAD")

    return app
