"""The JSON API against its own OpenAPI document: requests generated from the document
(schemathesis) with real tokens never get a 5xx, and every answer matches what the document
says of its status, content type and body."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.conftest import Api

#: Examples per operation and caller: CI-sized; raise it to look harder.
EXAMPLES = int(os.environ.get("TELEMED_API_FUZZ_EXAMPLES", "4"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
#: A server-sent event stream does not end: its answer is checked in its own tests.
STREAMS = {("GET", "/api/v1/events")}
#: An instance sent alone is bytes, like any binary body.
schemathesis.serializer.alias("application/dicom", "application/octet-stream")
#: Callers of every role: what the document describes must hold for each.
CALLERS = ("xlwd.clinic", "wang.reader", "hb.admin")


def _fuzz(operation: Any, base_url: str, headers: dict[str, str]) -> str | None:
    """Run the generated cases of one operation (no shrinking: the first failure is
    reported as it came); what failed, or None."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=60)
        case.validate_response(response, checks=CHECKS)

    try:
        run()
    except BaseExceptionGroup as exc:  # schemathesis groups what one case broke
        return f"{operation.method.upper()} {operation.path}: {exc}"
    return None


def _fuzz_all(operations: list[Any], base_url: str, tokens: dict[str, str]) -> list[str]:
    failures = []
    for user in CALLERS:
        headers = {"Authorization": f"Bearer {tokens[user]}"}
        for operation in operations:
            failed = _fuzz(operation, base_url, headers)
            if failed:
                failures.append(f"as {user}: {failed}")
    return failures


async def test_generated_requests_get_no_5xx_and_answers_match_the_document(api: Api) -> None:
    document = await (await api.client.get("/api/v1/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if isinstance(result, Ok) and (result.ok().method.upper(), result.ok().path) not in STREAMS
    ]
    assert len(operations) > 40
    base_url = str(api.client.make_url("/")).rstrip("/")
    # the service runs on this event loop: the synchronous client calls it from a thread
    failures = await asyncio.to_thread(_fuzz_all, operations, base_url, api.tokens)
    assert failures == [], "\n\n".join(failures)
