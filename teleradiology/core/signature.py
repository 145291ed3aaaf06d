"""The digest a signed report carries: its content bound to its case, author and time."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime

from storage.records import Case, User


def report_signature(
    case: Case, author: User, fields: Mapping[str, str], signed_at: datetime
) -> str:
    """The SHA-256 (hex) of the report's ``fields`` with its case, study, author and signing
    time, as canonical JSON (sorted keys, UTF-8, no spaces)."""
    if signed_at.tzinfo is None:
        raise ValueError("signed_at must be timezone-aware")
    content = {
        "case_id": case.id,
        "study_instance_uid": case.study_instance_uid,
        "author": author.username,
        "signed_at": signed_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        **fields,
    }
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
