"""Errors raised by the storage layer, translated once at each service boundary."""

import asyncpg
import urllib3


class StorageError(Exception):
    """Base of every storage failure."""


class ObjectNotFound(StorageError):
    """No object is stored under the key asked for."""


class IntegrityError(StorageError):
    """What was stored does not match what was written (size or hash)."""


class NotFound(StorageError):
    """A row that the caller named does not exist (or is outside the caller's scope)."""


class Conflict(StorageError):
    """The write contradicts what is already stored (same UID, other content; a taken claim)."""


class InvalidState(StorageError):
    """The action is not allowed in the record's present state."""


class ObjectCollected(StorageError):
    """A row was to refer to an object the collector deleted meanwhile: make sure of the
    object (write it again) and commit again."""


class SchemaError(StorageError):
    """The database schema is not the one this release knows, or cannot be changed now."""


class Unavailable(StorageError):
    """PostgreSQL or the object store refused the connection or did not answer in time: the
    same call may succeed once it is back."""


#: What means "not now": a timeout, a connection refused or cut (the object store's HTTP
#: errors among them), and PostgreSQL's own answers of that kind: the connection went away or
#: could not be made, the server is shutting down or starting (class 57, which also holds a
#: statement cancelled by its timeout), or it has no connections, memory or disk to spare
#: (class 53). On a multi-host DATABASE_URL with ``target_session_attrs=read-write``, every host
#: answering as a standby (a failover under way: no primary yet) is the same "not now".
_AWAY = (
    Unavailable,
    TimeoutError,
    ConnectionError,
    urllib3.exceptions.HTTPError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TargetServerAttributeNotMatched,
)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) means a store is away for now, so that the same
    request can be sent again, rather than that the request was wrong."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, _AWAY):
            return True
        seen = seen.__cause__
    return False
