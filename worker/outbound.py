"""How notification messages travel: e-mail through the configured SMTP server (aiosmtplib)
and JSON posted to robots and webhooks (aiohttp). Each call answers how it ended; nothing
here logs the message, the target's URL (a robot's key is in it) or the SMTP account.
"""

from __future__ import annotations

import time
from email.message import EmailMessage
from typing import Any

import aiohttp
import aiosmtplib

from storage.records import ChannelSpec
from teleradiology.core.notices import Answer, Message, judge_webhook, signed_url
from teleradiology.settings import Settings


class Carrier:
    """The worker's carrier of notification messages, over one HTTP session."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self._settings = settings
        self._session = session

    async def mail(self, to: str, message: Message) -> Answer:
        s = self._settings
        if not s.smtp_host:
            return Answer(ok=False, code="config", text="no SMTP server (TELEMED_SMTP_HOST)")
        mail = EmailMessage()
        mail["From"] = s.smtp_from
        mail["To"] = to
        mail["Subject"] = message.subject
        mail.set_content(message.text)
        try:
            _, response = await aiosmtplib.send(
                mail,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_user,
                password=s.smtp_password,
                use_tls=s.smtp_tls == "tls",
                start_tls=s.smtp_tls == "starttls",
                timeout=s.notice_timeout_s,
            )
        except aiosmtplib.SMTPResponseException as exc:
            return Answer(ok=False, code=str(exc.code), text=exc.message)
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Answer(ok=False, code="error", text=type(exc).__name__)
        return Answer(ok=True, code="250", text=response)

    async def post(self, spec: ChannelSpec, body: dict[str, Any]) -> Answer:
        url = signed_url(spec, int(time.time() * 1000))
        timeout = aiohttp.ClientTimeout(total=self._settings.notice_timeout_s)
        try:
            async with self._session.post(url, json=body, timeout=timeout) as response:
                text = (await response.content.read(4096)).decode("utf-8", "replace")
                return judge_webhook(spec.kind, response.status, text)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Answer(ok=False, code="error", text=type(exc).__name__)


def base_url(settings: Settings) -> str:
    """The address links in messages open: the public URL, else this host's web port."""
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    scheme = "https" if settings.https else "http"
    host = settings.http_host if settings.http_host not in ("0.0.0.0", "::", "") else "localhost"  # noqa: S104
    return f"{scheme}://{host}:{settings.http_port}"


class carrier:
    """A carrier for the block, its HTTP session closed after. A plain context manager, not a
    generator: closed from a cleanup context at a failed start, it has no generator of its
    own for the event loop to finalise beside its caller's."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Carrier:
        self._session = aiohttp.ClientSession()
        return Carrier(self._settings, self._session)

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
