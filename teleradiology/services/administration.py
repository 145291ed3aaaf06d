"""Administration: the network (facilities, users, their tokens), routing as data (policies,
routing rules, report destinations, duty rosters) and the DICOM nodes that query us.

An administrator's change is audited here, once, with what it set.
"""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path
from typing import Any

from storage import network, qido
from storage.db import Pool
from storage.qido import DicomNode
from storage.records import FacilityId, UserId
from teleradiology.core.errors import ConfigError

# --- DICOM nodes -----------------------------------------------------------------------------


async def import_dicom_nodes(pool: Pool, path: Path) -> int:
    """Add or update the DICOM nodes a TOML file declares (``[[dicom_node]]`` with
    ``ae_title``, ``user`` or ``facility``, optional ``host``, ``port``,
    ``move_destination``, ``may_query``); how many were saved.

    Raises
    ------
    ConfigError
        The file cannot be read, or a node in it is incomplete or names nobody we know.
    """
    try:
        text = await asyncio.to_thread(path.read_text, "utf-8")
        declared = tomllib.loads(text).get("dicom_node", [])
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"DICOM nodes file {path}: {exc}") from None
    for entry in declared:
        await qido.save_dicom_node(pool, await _dicom_node(pool, path, entry))
    return len(declared)


async def _dicom_node(pool: Pool, path: Path, entry: dict[str, Any]) -> DicomNode:
    ae = str(entry.get("ae_title", "")).strip()
    if not ae or len(ae) > 16:
        raise ConfigError(f"{path}: every dicom_node needs an ae_title of 1 to 16 characters")
    user_id: UserId | None = None
    facility_id: FacilityId | None = None
    if "user" in entry:
        user = await network.user_by_username(pool, str(entry["user"]))
        if user is None:
            raise ConfigError(f"{path}: dicom_node {ae}: no user {entry['user']}")
        user_id = user.id
    if "facility" in entry:
        found = [f for f in await network.list_facilities(pool) if f.code == entry["facility"]]
        if not found:
            raise ConfigError(f"{path}: dicom_node {ae}: no facility {entry['facility']}")
        facility_id = found[0].id
    try:
        return DicomNode(
            ae_title=ae,
            user_id=user_id,
            facility_id=facility_id,
            host=entry.get("host"),
            port=entry.get("port"),
            may_query=bool(entry.get("may_query", True)),
            move_destination=bool(entry.get("move_destination", False)),
        )
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
