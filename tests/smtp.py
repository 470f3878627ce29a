"""A real SMTP server (aiosmtpd on 127.0.0.1) whose behaviour the newsletter tests set:
slow answers, and per-address refusals that run out (451 then accept) or never do."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from .conftest import free_port


@dataclass
class Mailbox:
    """What the server received, per recipient; ``refuse[address]`` is a queue of RCPT
    answers used up one per try (an empty queue accepts)."""

    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    delay: float = 0.0
    refuse: dict[str, list[str]] = field(default_factory=dict)
    received: list[tuple[str, EmailMessage]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        with self._lock:
            answers = self.refuse.get(address.lower())
            if answers:
                return answers.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            for address in envelope.rcpt_tos:
                self.received.append((address.lower(), message))  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for a, m in self.received if a == address]

    def count(self) -> int:
        with self._lock:
            return len(self.received)


@contextmanager
def running(mailbox: Mailbox) -> Iterator[Mailbox]:
    controller = Controller(mailbox, hostname=mailbox.host, port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
