"""Where messages go: ``.eml`` files in an outbox folder, or an SMTP server.

Both are used from the digest's event loop; the blocking parts (file writes, ``smtplib``) run
in threads. SMTP keeps a small pool of connections (one per user in flight at most), opened
on first use and re-opened once when the server has dropped one.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import tempfile
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from tastebud.errors import TastebudError


class DeliveryError(TastebudError):
    """One message could not be delivered (the run goes on with the other users)."""


class Sink(Protocol):
    async def start(self) -> None: ...
    async def deliver(self, user_id: str, message: EmailMessage) -> str: ...
    async def close(self) -> None: ...


def eml_name(user_id: str) -> str:
    """File name of a user's message: the id percent-encoded (no separators), plus ``.eml``."""
    return quote(user_id, safe="") + ".eml"


def forget_in_outbox(outbox: Path, user_id: str) -> list[Path]:
    """Delete every message to ``user_id`` from an outbox folder (forgetting a user), found by
    the header compose puts on each, not by file name, so renamed files are found too."""
    from email.parser import BytesHeaderParser

    from tastebud.digest.compose import USER_HEADER

    removed = []
    for path in sorted(Path(outbox).glob("*.eml")):
        with open(path, "rb") as f:
            headers = BytesHeaderParser().parse(f)
        if headers.get(USER_HEADER, "").strip() == user_id:
            path.unlink()
            removed.append(path)
    return removed


class EmlOutbox:
    """Writes ``<outbox>/<user>.eml`` (atomically: a temporary file, then a rename)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    async def start(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TastebudError(f"cannot create the outbox {self.folder}: {exc.strerror}") from exc

    async def deliver(self, user_id: str, message: EmailMessage) -> str:
        return await asyncio.to_thread(self._write, user_id, message.as_bytes())

    def _write(self, user_id: str, data: bytes) -> str:
        path = self.folder / eml_name(user_id)
        try:
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".eml")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise DeliveryError(f"cannot write {path}: {exc.strerror or exc}") from exc
        return str(path)

    async def close(self) -> None:
        return None


def parse_hostport(text: str, default_port: int = 25) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise TastebudError(f"--smtp expects HOST:PORT, got {text!r}")
    return host, int(port)


class SmtpSender:
    """Sends through ``host:port`` with ``smtplib`` (plain SMTP, as to a local relay or sink)."""

    def __init__(self, host: str, port: int, *, timeout: float = 30.0, pool_size: int = 8,
                 local_hostname: str | None = None) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.local_hostname = local_hostname
        self._idle: list[smtplib.SMTP] = []
        self._slots = asyncio.Semaphore(pool_size)

    def _connect(self) -> smtplib.SMTP:
        try:
            return smtplib.SMTP(self.host, self.port, timeout=self.timeout, local_hostname=self.local_hostname)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"cannot connect to SMTP {self.host}:{self.port}: {exc}") from exc

    async def start(self) -> None:
        """Fail the run early (before anything is recorded) when the server is not there."""
        try:
            self._idle.append(await asyncio.to_thread(self._connect))
        except DeliveryError as exc:
            raise TastebudError(str(exc)) from exc

    async def deliver(self, user_id: str, message: EmailMessage) -> str:
        async with self._slots:
            connection = self._idle.pop() if self._idle else None
            connection, error = await asyncio.to_thread(self._send, connection, message)
            if connection is not None:
                self._idle.append(connection)
        if error:
            raise DeliveryError(error)
        return f"smtp://{self.host}:{self.port}"

    def _send(self, connection: smtplib.SMTP | None, message: EmailMessage) -> tuple[smtplib.SMTP | None, str]:
        """Send once (again on a fresh connection when the server had dropped this one);
        returns the connection if it is still usable, and an error message or ''."""
        for attempt in (1, 2):
            if connection is None:
                try:
                    connection = self._connect()
                except DeliveryError as exc:
                    return None, str(exc)
            try:
                refused = connection.send_message(message)
            except smtplib.SMTPServerDisconnected:
                connection = None
                if attempt == 2:
                    return None, "SMTP server closed the connection"
                continue
            except smtplib.SMTPRecipientsRefused as exc:  # smtplib has sent RSET: still usable
                codes = "; ".join(f"{rcpt}: {code} {text.decode(errors='replace')}"
                                  for rcpt, (code, text) in exc.recipients.items())
                return connection, f"SMTP refused the recipient: {codes}"
            except smtplib.SMTPResponseException as exc:
                return connection, (f"SMTP refused the message: {exc.smtp_code} "
                                    f"{exc.smtp_error.decode(errors='replace')}")
            except (OSError, smtplib.SMTPException) as exc:
                _quietly_close(connection)
                return None, f"SMTP error: {exc}"
            if refused:
                return connection, f"SMTP refused: {refused}"
            return connection, ""
        return None, "SMTP server closed the connection"

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await asyncio.to_thread(_quit, connection)


def _quit(connection: smtplib.SMTP) -> None:
    try:
        connection.quit()
    except (OSError, smtplib.SMTPException):
        _quietly_close(connection)


def _quietly_close(connection: smtplib.SMTP) -> None:
    try:
        connection.close()
    except OSError:
        pass
