"""What the service's log may say: never a patient's data.

PostgreSQL explains a refused row in its DETAIL line (``Key (patient_id)=(...) already
exists``), and database drivers put that line into the exception's text; a traceback in the
log would carry it. The formatter drops those lines from every record it writes.
"""

from __future__ import annotations

import logging
import re

#: The lines of a database error that quote the row's values.
_QUOTING = re.compile(r"^\s*(DETAIL|HINT|CONTEXT|QUERY|WHERE):.*$", re.MULTILINE)
WITHHELD = "(database detail withheld: it may quote patient data)"


def withhold_details(text: str) -> str:
    """``text`` without the lines of a database error that quote values."""
    return _QUOTING.sub(WITHHELD, text)


class PrivateFormatter(logging.Formatter):
    """A formatter whose output never carries a database error's DETAIL (or HINT, CONTEXT,
    QUERY, WHERE) lines, in the message or in the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        return withhold_details(super().format(record))
