"""WebSub: tell the hub which feeds changed, so subscribers hear of it in seconds.

One POST per publish (``hub.mode=publish`` with a ``hub.url`` per changed feed, as the
common hubs accept), a short timeout and one retry. A hub that is down costs the publish at
most two timeouts: the files are already written, and readers still poll.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import httpx

from aggregator.fetch import USER_AGENT

__all__ = ["ping_hub"]

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0
ATTEMPTS = 2


def ping_hub(
    hub: str,
    feed_urls: Sequence[str],
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Notify ``hub`` that ``feed_urls`` changed; True when it accepted (any 2xx)."""
    if not feed_urls:
        return True
    form = {"hub.mode": "publish", "hub.url": list(feed_urls)}
    problem = ""
    with httpx.Client(
        timeout=TIMEOUT_SECONDS, transport=transport, headers={"User-Agent": USER_AGENT}
    ) as client:
        for attempt in range(ATTEMPTS):
            if attempt:
                sleep(1.0)
            try:
                response = client.post(hub, data=form)
            except httpx.HTTPError as exc:
                problem = str(exc) or type(exc).__name__
                continue
            if response.is_success:
                log.info("WebSub hub %s notified of %d feed(s)", hub, len(feed_urls))
                return True
            problem = f"HTTP {response.status_code}"
    log.warning("WebSub hub %s was not notified (%s); readers will still poll", hub, problem)
    return False
