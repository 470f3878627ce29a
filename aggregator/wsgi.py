"""Mount the web app under any WSGI server, e.g.::

    gunicorn 'aggregator.wsgi:create_app()'                      # ./feeds.yaml
    AGGREGATOR_CONFIG=/etc/aggregator/feeds.yaml gunicorn 'aggregator.wsgi:create_app()'

It serves ``output/`` and the unsubscribe endpoints, like ``aggregator serve``.
"""

from __future__ import annotations

import os

from .app import make_aggregator
from .web import WSGIApplication


def create_app(config_path: str | os.PathLike[str] | None = None) -> WSGIApplication:
    """The WSGI application for ``config_path`` (default: $AGGREGATOR_CONFIG or ./feeds.yaml).

    The database stays open for the life of the process, as a WSGI app's does.
    """
    return make_aggregator(config_path).web_app()
