"""The exceptions of the ``ecg`` package.

Every failure the package reports derives from :class:`EcgError`, so a boundary (an HTTP
handler, a worker job) translates one family of exceptions into its own error answer.
"""

from __future__ import annotations

__all__ = ["EcgError", "EcgFormatError", "EcgRecordError"]


class EcgError(Exception):
    """Base class of every error raised by the ``ecg`` package."""


class EcgFormatError(EcgError):
    """The input bytes are not a readable ECG of the expected format.

    Raised for truncated or corrupted files, unsupported variants of a format and hostile
    input (XML entity expansion, external entities). The message names the problem, for
    example ``"SCP-ECG section 6: expected 5000 samples for lead V1, found 4870"``.
    """


class EcgRecordError(EcgError, ValueError):
    """An :class:`~ecg.record.EcgRecord` (or one of its parts) was built with invalid values.

    The message names the field, the value that was given and what is allowed.
    """
