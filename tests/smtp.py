"""A real SMTP server (aiosmtpd on 127.0.0.1) whose behaviour tests script: per-address
RCPT answers that run out (451, then accept) or never do, slow answers, a dropped
connection, and a record of every message and connection."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from .conftest import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class Handler:
    """Keeps every envelope, counts connections, and answers RCPT as told.

    ``answers[address]`` is a queue of answers for that address's RCPT commands, used up
    one per try; once empty (or for any other address) the address is accepted.
    ``always[address]`` answers every RCPT for that address. ``delay`` slows RCPT and
    DATA down. ``drop_data_once`` lists addresses whose first DATA loses the connection.
    """

    answers: dict[str, list[str]] = field(default_factory=dict)
    always: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop_data_once: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    rcpt_calls: list[str] = field(default_factory=list)
    sessions: list[Any] = field(default_factory=list)  # one per connection that sent RCPT
    port: int = 0  # where it listens, once ``running``

    @property
    def connections(self) -> int:
        return len({id(s) for s in self.sessions})

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if not any(s is session for s in self.sessions):
            self.sessions.append(session)
        self.rcpt_calls.append(address)
        if self.delay:
            await asyncio.sleep(self.delay)
        if address in self.always:
            return self.always[address]
        queued = self.answers.get(address)
        if queued:
            return queued.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        dropped = self.drop_data_once & set(envelope.rcpt_tos)
        if dropped:
            self.drop_data_once -= dropped
            server.transport.close()  # the connection is lost before the server answers
            return "421 4.3.0 closing"
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
        )
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        """Every message the server accepted for ``address``, parsed, in order."""
        return [
            message_from_bytes(r.content, policy=policy.default)  # type: ignore[misc]
            for r in list(self.received)
            if address in (a.lower() for a in r.rcpt_tos)
        ]

    def count(self) -> int:
        """Messages accepted, one per recipient."""
        return sum(len(r.rcpt_tos) for r in list(self.received))


@contextmanager
def running(handler: Handler, port: int | None = None) -> Iterator[Controller]:
    controller = Controller(handler, hostname="127.0.0.1", port=port or free_port())
    controller.start()
    handler.port = controller.port
    try:
        yield controller
    finally:
        controller.stop()
