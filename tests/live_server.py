"""A real tastebud server on its own event loop in a background thread, for every test folder
(``tests/`` is on the import path: its conftest.py sits there)."""

from __future__ import annotations

import asyncio
import threading

from tastebud.embed.encoder import Encoder
from tastebud.server.app import RunningServer, start_server
from tastebud.server.config import ServerConfig


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
