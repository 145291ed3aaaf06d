"""A database error logged with its traceback does not carry the row's values: PostgreSQL's
DETAIL line (``Key (...)=(...)``) is withheld by the service's log formatter."""

from __future__ import annotations

import io
import logging

import asyncpg
import pytest

from teleradiology.core.logs import WITHHELD, PrivateFormatter

PATIENT_ID = "HB-DETAIL-5521"


async def test_a_unique_violation_logged_with_its_traceback_withholds_the_values(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        await conn.execute("create temporary table seen (patient_id text primary key)")
        await conn.execute("insert into seen values ($1)", PATIENT_ID)
        with pytest.raises(asyncpg.UniqueViolationError) as raised:
            await conn.execute("insert into seen values ($1)", PATIENT_ID)
    assert PATIENT_ID in str(raised.value), "the driver no longer quotes DETAIL: drop this test"

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(PrivateFormatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("tests.log_privacy")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise raised.value
        except asyncpg.UniqueViolationError:
            logger.exception("storing failed")
        logger.warning("storing failed: %s", raised.value)
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "UniqueViolationError" in text
    assert "duplicate key value violates unique constraint" in text
    assert PATIENT_ID not in text
    assert text.count(WITHHELD) == 2
