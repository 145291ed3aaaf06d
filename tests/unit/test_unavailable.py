"""Which failures mean "a store is away, send again" (503, A700) and which mean "wrong"."""

from __future__ import annotations

import asyncpg
import pytest
import urllib3

from storage.errors import Conflict, StorageError, Unavailable, is_unavailable


def _caused(outer: Exception, cause: BaseException) -> Exception:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        asyncpg.exceptions.TargetServerAttributeNotMatched("no host is read-write"),
        TimeoutError(),
        ConnectionRefusedError(111, "Connect call failed"),
        Unavailable("S3 did not answer"),
        _caused(StorageError("S3 could not store"), urllib3.exceptions.ProtocolError("reset")),
    ],
)
def test_an_outage_is_unavailable(exc: BaseException) -> None:
    assert is_unavailable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.UndefinedColumnError("no such column"),
        Conflict("same UID, other content"),
        StorageError("S3 could not store: AccessDenied"),
        FileNotFoundError("/spool/x"),
        ValueError("bad key"),
    ],
)
def test_a_wrong_request_or_a_bug_is_not(exc: BaseException) -> None:
    assert not is_unavailable(exc)
