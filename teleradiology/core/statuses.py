"""The DICOM status codes the service answers with, and takes from the nodes it sends to
(PS3.4 and PS3.7), one name per outcome."""

from __future__ import annotations

from enum import IntEnum


class StoreStatus(IntEnum):
    """C-STORE response statuses (PS3.4 B.2.3 and PS3.7 C), one per outcome."""

    SUCCESS = 0x0000
    #: Failure: the SOP Instance UID is stored with other content (the first copy is kept).
    DUPLICATE_SOP_INSTANCE = 0x0111
    #: Failure: the calling AE title belongs to no facility.
    NOT_AUTHORIZED = 0x0124
    #: Failure: the archive could not make the instance durable (disk, database).
    OUT_OF_RESOURCES = 0xA700
    #: Failure: the data set is not of the study named, or its UIDs do not fit the index.
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    #: Failure: not DICOM, truncated, damaged, or an identifying UID missing.
    CANNOT_UNDERSTAND = 0xC000
    #: Warning: stored, but the index holds other values than the file (patient data that
    #: differs from the study's is indexed under the study's patient and recorded).
    COERCION_OF_DATA_ELEMENTS = 0xB000
    #: Warning (a peer's answer): stored, some elements discarded.
    ELEMENTS_DISCARDED = 0xB006
    #: Warning (a peer's answer): stored, though the data set does not match the SOP class.
    DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING = 0xB007


class QueryStatus(IntEnum):
    """C-FIND, C-GET and C-MOVE response statuses (PS3.4 C.4), one per outcome."""

    SUCCESS = 0x0000
    #: A match (C-FIND) or a sub-operation (C-GET) follows.
    PENDING = 0xFF00
    #: The caller canceled.
    CANCEL = 0xFE00
    #: Failure: the query is refused or cannot be run (its comment says why).
    UNABLE_TO_PROCESS = 0xC000
    #: Failure: the identifier does not match the information model.
    IDENTIFIER_MISMATCH = 0xA900
    #: Failure (C-MOVE): the destination AE title is not one the service sends to.
    MOVE_DESTINATION_UNKNOWN = 0xA801
    #: Failure: refused, out of resources (more matches than one retrieve may send).
    REFUSED_OUT_OF_RESOURCES = 0xA701


class NStatus(IntEnum):
    """N-CREATE, N-SET and N-ACTION response statuses (PS3.7 C, PS3.4 F.7.2), one per
    outcome."""

    SUCCESS = 0x0000
    #: Failure: an attribute's value is not one the service takes (a malformed N-SET).
    INVALID_ATTRIBUTE_VALUE = 0x0106
    #: Failure: the request could not be processed (the database is not answering).
    PROCESSING_FAILURE = 0x0110
    #: Failure: the SOP Instance UID of an N-CREATE is taken.
    DUPLICATE_SOP_INSTANCE = 0x0111
    #: Failure: no such object instance (unknown, or another facility's).
    NO_SUCH_OBJECT_INSTANCE = 0x0112
    #: Failure: a required attribute is missing.
    MISSING_ATTRIBUTE = 0x0120
    #: Failure: the calling AE title belongs to no facility's workstations.
    NOT_AUTHORIZED = 0x0124
    #: Failure (MPPS): the step is COMPLETED or DISCONTINUED and may no longer be updated.
    MAY_NO_LONGER_BE_UPDATED = 0xA710
