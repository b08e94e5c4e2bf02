"""Sending over SMTP (aiosmtplib), behind a small interface the sender depends on.

A failure is either `MailDeferred` (try again later: the server is down, slow or says
4xx) or `MailRefused` (the server refused this message for good: 5xx).
"""

from __future__ import annotations

from typing import Protocol

import aiosmtplib

from services.notify.settings import NotifySettings
from shared.metrics import external_call


class MailDeferred(Exception):
    """Not sent now; the same message may be sent later."""

    def __init__(self, reason: str, *, connection: bool) -> None:
        super().__init__(reason)
        self.connection = connection  # True: nothing can be sent until the server is back


class MailRefused(Exception):
    """The server will never take this message."""


class MailTransport(Protocol):
    async def send(self, sender: str, recipient: str, message: bytes) -> None: ...
    async def close(self) -> None: ...


class SmtpTransport:
    """One SMTP connection, opened when needed and kept between messages."""

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings
        self._client: aiosmtplib.SMTP | None = None

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            timeout=s.smtp_timeout_s,
            start_tls=s.smtp_starttls,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
        )
        await client.connect()
        self._client = client
        return client

    async def send(self, sender: str, recipient: str, message: bytes) -> None:
        with external_call("notify", "smtp"):
            await self._send(sender, recipient, message)

    async def _send(self, sender: str, recipient: str, message: bytes) -> None:
        try:
            client = await self._connected()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            raise MailDeferred(f"connect: {type(exc).__name__}: {exc}", connection=True) from exc
        try:
            await client.sendmail(sender, [recipient], message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [getattr(r, "code", 0) for r in exc.recipients]
            if codes and all(code >= 500 for code in codes):
                raise MailRefused(f"recipient refused: {codes}") from exc
            raise MailDeferred(f"recipient deferred: {codes}", connection=False) from exc
        except aiosmtplib.SMTPResponseException as exc:
            await self.close()
            if exc.code >= 500:
                raise MailRefused(f"{exc.code} {exc.message}") from exc
            # 421: the server is closing the connection; other messages wait too.
            raise MailDeferred(f"{exc.code} {exc.message}", connection=exc.code == 421) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            raise MailDeferred(f"{type(exc).__name__}: {exc}", connection=True) from exc

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()
