"""The service's domain errors, turned into problem+json or DICOM statuses at each edge.

An error's message is written for a person, in Chinese marked with ``N_`` (its English in the
catalog), its values given apart: ``NotFound(N_(text), code=code)``. The
HTTP edge says it in the caller's language (:meth:`ServiceError.say`); ``str()`` of the error
is its English, for the DICOM statuses' error comments and the logs. A message not yet
written in Chinese is English in every language.
"""

from __future__ import annotations

from storage.records import Language
from teleradiology.core.language import N_, Phrase


class ServiceError(Exception):
    """Base of the errors a caller can act on; the message is written for a person."""

    def __init__(self, text: str | Phrase = "", /, **values: object) -> None:
        self.phrase = text if isinstance(text, Phrase) else Phrase(text, values)
        super().__init__(self.phrase.say(Language.EN))

    def say(self, language: Language) -> str:
        """The message in `language`."""
        return self.phrase.say(language)


class WrongValue(ValueError):
    """A request model's own check of its values (pydantic wants a ValueError), its message
    said in the caller's language as a :class:`ServiceError`'s is."""

    def __init__(self, text: str, /, **values: object) -> None:
        self.phrase = Phrase(text, values)
        super().__init__(self.phrase.say(Language.EN))


class InvalidDicom(ServiceError):
    """The bytes are not a DICOM instance we can store (not DICOM, truncated, missing UID)."""


class UnknownSender(ServiceError):
    """The calling AE title or the user belongs to no facility that may send studies."""


class DuplicateConflict(ServiceError):
    """Same SOP Instance UID as a stored instance, with other content: refused."""


class Unauthorized(ServiceError):
    """No valid credentials came with the request."""


TOO_MANY_ATTEMPTS = N_("连续输错密码次数过多：请 %(s)s 秒后再试（管理员可重置密码）")


class TooManyAttempts(ServiceError):
    """Too many wrong passwords in a row for this account or address: wait and try again."""

    def __init__(self, wait_s: float) -> None:
        self.wait_s = max(1, round(wait_s))
        super().__init__(TOO_MANY_ATTEMPTS, s=self.wait_s)


class Forbidden(ServiceError):
    """The caller is known but may not do this."""


class NotFound(ServiceError):
    """Nothing by that name in the caller's scope."""


class InvalidState(ServiceError):
    """The action is not allowed in the case's or report's present state."""


class Conflict(ServiceError):
    """Someone else got there first (another reader holds the case)."""


class BadRequest(ServiceError):
    """The request itself is malformed; the message says what to fix."""


#: The problem type of an answer that means "send the same request again": what arrived was
#: cut short on the way, nothing of it was kept, and the client retries (a refusal is final).
SEND_AGAIN = "urn:telemed:problem:send-again"


class SendAgain(ServiceError):
    """What arrived is incomplete (the transfer was cut): the same request again can succeed."""


class TooLarge(ServiceError):
    """A body, or a file it announces, is larger than this request may carry."""


class UnsupportedMediaType(ServiceError):
    """The body's Content-Type or Content-Encoding is not one this request takes."""


class Unprocessable(ServiceError):
    """What is stored cannot be turned into what was asked (pixels that cannot be decoded)."""


#: The problem type of a refusal for a facility's daily intake limit (HTTP 429).
QUOTA_EXCEEDED = "urn:telemed:problem:quota-exceeded"


class QuotaExceeded(ServiceError):
    """The facility has sent its daily limit (bytes or instances): nothing more is stored
    until the next UTC day, unless an administrator raises the limit."""

    def __init__(self, message: str | Phrase, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


class WorkLost(ServiceError):
    """The process doing CPU-heavy work for the request was lost (killed, out of memory) or
    ran past its time limit; nothing was kept, and the same request can be sent again."""


class NotAcceptable(ServiceError):
    """None of the representations the client accepts can be produced."""


class NotConfigured(ServiceError):
    """This service was not given what the request needs (a setting of its operator)."""


class ConfigError(ServiceError):
    """A configuration or network file is invalid."""
