"""Errors raised by the storage layer, translated once at each service boundary."""


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


class SchemaError(StorageError):
    """The database schema is not the one this release knows, or cannot be changed now."""
