"""What the test folders share (``tests/`` is on the import path: its conftest.py sits there):
a real tastebud server on its own event loop in a background thread, the demo index they serve,
a free port, and paging through every user."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

from tastebud.embed.encoder import Encoder
from tastebud.index.build import BuildOptions, build_index
from tastebud.ingest.config import DatasetConfig
from tastebud.ingest.demo import DemoFiles
from tastebud.ingest.model import Dataset
from tastebud.ingest.readers import load_dataset
from tastebud.server.app import RunningServer, start_server
from tastebud.server.config import ServerConfig
from tastebud.train.two_tower import TwoTowerConfig
from tastebud.v1 import recommender_pb2 as pb

# For tests of pages and mail, not of the model: one member, a short training.
ONE_MEMBER_TWO_TOWER = TwoTowerConfig(epochs=6, members=1, threads=1)


def load_demo(files: DemoFiles) -> Dataset:
    return load_dataset(files.items, files.interactions, DatasetConfig.from_toml(files.config))


def publish_demo_index(dataset: Dataset, encoder: Encoder, root: Path, n_shards: int, two_tower: TwoTowerConfig
                       ) -> Path:
    """``root`` with one published exact (Flat) version of ``dataset``: the two-tower model and no
    learned re-ranker, so answers have an exact reference."""
    build_index(dataset, encoder, root, BuildOptions(n_shards=n_shards, progress=False, retrieval="two_tower",
                                                     ranker=None, two_tower=two_tower))
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def all_user_ids(stub, page_size: int, timeout: float = 10.0) -> list[str]:
    """Every user id ListUsers gives, page by page (``stub``: a sync RecommenderStub)."""
    users, token = [], ""
    while True:
        page = stub.ListUsers(pb.ListUsersRequest(page_size=page_size, page_token=token), timeout=timeout)
        users += list(page.user_ids)
        token = page.next_page_token
        if not token:
            return users


class ServerThread:
    """A real server on its own event loop in a daemon thread."""

    def __init__(self, config: ServerConfig, encoder: Encoder) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.running: RunningServer = self.call(start_server(config, encoder))
        self.target = f"127.0.0.1:{self.running.port}"

    def call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=120)

    def stop(self) -> None:
        self.call(self.running.stop(0.5))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
