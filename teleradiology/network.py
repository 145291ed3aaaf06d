"""The network file: facilities and users in TOML, checked before anything is written."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from typing import Any

from storage.network import FacilitySpec, UserSpec
from storage.records import Role, Specialty, Tier
from teleradiology.auth import hash_password
from teleradiology.errors import ConfigError
from teleradiology.settings import AE_TITLE

#: Which tier may stand directly under which.
_PARENT_TIER = {
    Tier.VILLAGE: {Tier.TOWNSHIP, Tier.COUNTY},
    Tier.TOWNSHIP: {Tier.COUNTY},
    Tier.COUNTY: {Tier.CITY},
    Tier.CITY: set(),
}


def _str(entry: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = entry.get(key)
    if value is None:
        if required:
            raise ConfigError(f"{where}: '{key}' is missing")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: '{key}' must be non-empty text")
    return value.strip()


def parse_network(text: str) -> tuple[list[FacilitySpec], list[UserSpec]]:
    """Check a network TOML document and return its facilities (parents first) and users.

    Raises
    ------
    ConfigError
        The message names the entry and the value that is wrong.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the network file is not valid TOML: {exc}") from None
    unknown = set(doc) - {"facility", "user"}
    if unknown:
        raise ConfigError(f"unknown sections in the network file: {', '.join(sorted(unknown))}")
    facilities = [_facility(e, i) for i, e in enumerate(_tables(doc, "facility"))]
    by_code: dict[str, FacilitySpec] = {}
    for f in facilities:
        if f.code in by_code:
            raise ConfigError(f"facility code {f.code} appears twice")
        by_code[f.code] = f
    seen_ae: dict[str, str] = {}
    for f in facilities:
        for ae in f.ae_titles:
            if ae in seen_ae:
                raise ConfigError(f"AE title {ae} is used by {seen_ae[ae]} and {f.code}")
            seen_ae[ae] = f.code
        if f.parent is not None and f.parent not in by_code:
            # The parent may already be in the database: checked when importing.
            continue
        if f.parent is not None:
            parent = by_code[f.parent]
            if parent.tier not in _PARENT_TIER[f.tier]:
                raise ConfigError(
                    f"facility {f.code} ({f.tier}) cannot stand under {parent.code} ({parent.tier})"
                )
    users = [_user(e, i) for i, e in enumerate(_tables(doc, "user"))]
    names = [u.username for u in users]
    if len(set(names)) != len(names):
        raise ConfigError("a username appears twice")
    return _parents_first(facilities), users


def _tables(doc: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise ConfigError(f"'{key}' must be a list of tables ([[{key}]])")
    return value


def _facility(entry: Mapping[str, Any], i: int) -> FacilitySpec:
    where = f"facility #{i + 1}"
    code = _str(entry, "code", where)
    assert code is not None
    where = f"facility {code}"
    name = _str(entry, "name", where)
    tier_text = _str(entry, "tier", where)
    try:
        tier = Tier(tier_text or "")
    except ValueError:
        allowed = ", ".join(t.value for t in Tier)
        raise ConfigError(f"{where}: tier {tier_text!r} is not one of {allowed}") from None
    parent = _str(entry, "parent", where, required=False)
    if tier is not Tier.CITY and parent is None and tier is not Tier.COUNTY:
        raise ConfigError(f"{where}: a {tier} facility needs a 'parent'")
    ae_titles = entry.get("ae_titles", [])
    if not isinstance(ae_titles, list) or not all(isinstance(a, str) for a in ae_titles):
        raise ConfigError(f"{where}: 'ae_titles' must be a list of text")
    for ae in ae_titles:
        if not AE_TITLE.match(ae) or ae != ae.strip():
            raise ConfigError(f"{where}: AE title {ae!r} must be 1 to 16 characters, no spaces")
    return FacilitySpec(
        code=code, name=name or code, tier=tier, parent=parent, ae_titles=tuple(ae_titles)
    )


def _user(entry: Mapping[str, Any], i: int) -> UserSpec:
    where = f"user #{i + 1}"
    username = _str(entry, "username", where)
    assert username is not None
    where = f"user {username}"
    role_text = _str(entry, "role", where)
    try:
        role = Role(role_text or "")
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise ConfigError(f"{where}: role {role_text!r} is not one of {allowed}") from None
    raw = entry.get("specialties", [])
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: 'specialties' must be a list")
    try:
        specialties = tuple(Specialty(s) for s in raw)
    except ValueError:
        allowed = ", ".join(s.value for s in Specialty)
        raise ConfigError(f"{where}: specialties must be among {allowed}") from None
    if role is Role.READER and not specialties:
        raise ConfigError(f"{where}: a reader needs at least one specialty")
    if role is not Role.READER and specialties:
        raise ConfigError(f"{where}: only readers have specialties")
    password = entry.get("password")
    if password is not None and not isinstance(password, str):
        raise ConfigError(f"{where}: 'password' must be text")
    try:
        password_hash = hash_password(password) if password else None
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return UserSpec(
        username=username,
        display_name=_str(entry, "display_name", where, required=False) or username,
        role=role,
        facility=_str(entry, "facility", where) or "",
        specialties=specialties,
        password_hash=password_hash,
    )


def _parents_first(facilities: list[FacilitySpec]) -> list[FacilitySpec]:
    codes = {f.code for f in facilities}
    ordered: list[FacilitySpec] = []
    placed: set[str] = set()
    pending = list(facilities)
    while pending:
        ready = [
            f for f in pending if f.parent is None or f.parent in placed or f.parent not in codes
        ]
        if not ready:
            raise ConfigError(f"facilities form a cycle: {', '.join(f.code for f in pending)}")
        for f in ready:
            ordered.append(f)
            placed.add(f.code)
        pending = [f for f in pending if f.code not in placed]
    return ordered
