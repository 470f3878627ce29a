"""Managing who reads each digest: ``aggregator subscribers …`` and the unsubscribe links.

The pure parts (address rules, signed tokens, CSV reading) are in ``subscribers.py``;
this module applies them to the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .config import Config, require_digest
from .errors import ConfigError, ConfigProblem
from .models import Clock, Subscriber
from .store.ledger import DigestLedger
from .subscribers import (
    TokenClaim,
    UnsubscribeOutcome,
    new_nonce,
    normalise_address,
    parse_subscriber_csv,
)


@dataclass(frozen=True)
class AddReport:
    added: tuple[str, ...] = ()
    reactivated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()


class Subscribers:
    """Subscribers of the configured digests; also the web app's ``Unsubscriber``."""

    def __init__(self, config: Config, ledger: DigestLedger, clock: Clock) -> None:
        self._config = config
        self._ledger = ledger
        self._clock = clock

    def add(self, digest_id: str, addresses: Sequence[str], *, source: str = "cli") -> AddReport:
        """Add (or re-subscribe) readers; raises ValueError naming a bad address first."""
        digest = require_digest(self._config, digest_id)
        normalised = list(dict.fromkeys(normalise_address(a) for a in addresses))
        results = self._ledger.add_subscribers(
            digest.id, normalised, source=source, now=self._clock(), new_nonce=new_nonce
        )
        return AddReport(
            added=tuple(a for a, r in results.items() if r == "added"),
            reactivated=tuple(a for a, r in results.items() if r == "reactivated"),
            unchanged=tuple(a for a, r in results.items() if r == "unchanged"),
        )

    def import_csv(self, digest_id: str, path: Path) -> AddReport:
        """Add every address in a CSV file; nothing is added when any line is bad."""
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                [ConfigProblem(str(path), 0, "(file)", f"cannot read: {exc}")]
            ) from exc
        return self.add(digest_id, parse_subscriber_csv(text, str(path)), source="csv")

    def remove(self, digest_id: str, address: str) -> bool:
        digest = require_digest(self._config, digest_id)
        return self._ledger.remove_subscriber(digest.id, normalise_address(address), self._clock())

    def listing(self, digest_id: str) -> list[Subscriber]:
        digest = require_digest(self._config, digest_id)
        listed = set(digest.to)
        return [
            s
            for s in self._ledger.subscribers(digest.id)
            if s.source != "config" or s.address in listed or s.status != "active"
        ]

    # ------------------------------------------------------------ the web app's seam

    def unsubscribe(self, claim: TokenClaim) -> UnsubscribeOutcome:
        if self._config.digest(claim.digest_id) is None:
            return UnsubscribeOutcome.UNKNOWN
        return self._ledger.unsubscribe(claim, self._clock())

    def digest_title(self, digest_id: str) -> str | None:
        digest = self._config.digest(digest_id)
        return None if digest is None else digest.title
