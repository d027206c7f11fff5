"""Fixtures of the digest tests: a real tastebud server on the demo data and a real SMTP
server (aiosmtpd) on loopback that keeps every message it receives.

The index is built like tests/integration's (real bundled model, two-tower, exact Flat shards,
no learned re-ranker), with more users, so that the throughput test has 200 of its own.
"""

from __future__ import annotations

import csv
import os
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Iterator

import grpc
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from aiosmtpd.controller import Controller  # noqa: E402

from tastebud.embed.encoder import SentenceTransformerEncoder  # noqa: E402
from tastebud.ingest.demo import write_demo_data  # noqa: E402
from tastebud.server.config import ServerConfig  # noqa: E402
from tastebud.v1 import recommender_pb2_grpc as pb_grpc  # noqa: E402

from live_server import ONE_MEMBER_TWO_TOWER, ServerThread, free_port, load_demo, publish_demo_index  # noqa: E402

DEMO_ITEMS = 600
DEMO_USERS = 260


@pytest.fixture(scope="session")
def digest_demo_files(tmp_path_factory: pytest.TempPathFactory):
    return write_demo_data(tmp_path_factory.mktemp("digest-demo"), n_items=DEMO_ITEMS, n_users=DEMO_USERS, seed=0)


@pytest.fixture(scope="session")
def demo_history(digest_demo_files) -> dict[str, set[str]]:
    """user id -> item ids in the demo interactions file (what the user has seen)."""
    seen: dict[str, set[str]] = defaultdict(set)
    with open(digest_demo_files.interactions, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            seen[row["user_id"]].add(row["item_id"])
    return dict(seen)


@pytest.fixture(scope="session")
def digest_server(digest_demo_files, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    encoder = SentenceTransformerEncoder()
    root = publish_demo_index(load_demo(digest_demo_files), encoder, tmp_path_factory.mktemp("digest-indexes"), 3,
                              ONE_MEMBER_TWO_TOWER)
    store = tmp_path_factory.mktemp("digest-store") / "interactions.sqlite"
    thread = ServerThread(ServerConfig(index=root, port=0, store=store, workers=2), encoder)
    yield thread
    thread.stop()


@pytest.fixture(scope="session")
def stub(digest_server: ServerThread) -> Iterator[pb_grpc.RecommenderStub]:
    with grpc.insecure_channel(digest_server.target) as channel:
        yield pb_grpc.RecommenderStub(channel)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)


@dataclass
class SinkHandler:
    """aiosmtpd handler: keeps every message; refuses the recipients in ``refuse`` with 550."""

    received: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 Message accepted for delivery"

    def take(self) -> list[Received]:
        with self.lock:
            out, self.received = self.received, []
        return out


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[tuple[SinkHandler, int]]:
    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()


@pytest.fixture
def smtp(smtp_sink) -> Iterator[tuple[SinkHandler, int]]:
    """The session's SMTP sink, emptied and with no refusals for each test."""
    handler, port = smtp_sink
    handler.take()
    handler.refuse.clear()
    yield handler, port
    handler.refuse.clear()
