"""The newest index version a process would not adopt, and why: shards and the router both
keep one, say it in their answers, and verify the version again after a while (a file may have
been caught mid-copy) rather than on every watch tick or never."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

RETRY_SECONDS = 60.0


@dataclass
class Refusal:
    version: str = ""
    reason: str = ""
    at: float = 0.0  # monotonic time of the refusal

    def record(self, version: str, reason: str, log: logging.Logger, who: str) -> None:
        """Remember a refusal; logged once per (version, reason), not on every retry."""
        if (self.version, self.reason) != (version, reason):
            log.error("%s: not adopting index version %s: %s", who, version or "(none)", reason)
        self.version, self.reason, self.at = version, reason, time.monotonic()

    def holds_off(self, version: str) -> bool:
        """Whether ``version`` was refused too recently to verify it again."""
        return version == self.version and time.monotonic() - self.at < RETRY_SECONDS

    def clear(self) -> None:
        self.version, self.reason, self.at = "", "", 0.0
