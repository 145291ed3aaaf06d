"""The administrator's console as the API takes and answers it: facilities with their
workstations' titles, and DICOM nodes."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, StrictBool

from storage.console import ManagedFacility, ManagedNode
from storage.records import AePeer, Tier
from teleradiology.http.api.models.admin import DestinationOut
from teleradiology.http.models import Model

AeTitle = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[^\\\s]([^\\]*[^\\\s])?$")]
Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class WorkstationIn(Model):
    """A workstation's calling AE title and what it must call from or show."""

    model_config = ConfigDict(extra="forbid")

    ae_title: AeTitle
    host: str | None = Field(
        default=None, description="an address, a CIDR block or a host name it calls from"
    )
    certificate_sha256: str | None = Field(
        default=None, description="the SHA-256 fingerprint of its TLS client certificate"
    )


class WorkstationOut(Model):
    ae_title: str
    host: str | None
    certificate_sha256: str | None

    @classmethod
    def of(cls, w: AePeer) -> WorkstationOut:
        return cls(ae_title=w.ae_title, host=w.host, certificate_sha256=w.cert_sha256)


class FacilityIn(Model):
    model_config = ConfigDict(extra="forbid")

    code: Code
    name: Name
    tier: Tier
    parent: Code = Field(description="the code of a facility of your network")
    workstations: list[WorkstationIn] = Field(default_factory=list)


class FacilityChangeIn(Model):
    """What changes; a field left out stays as it is. ``workstations`` replaces every title."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    tier: Tier | None = None
    parent: Code | None = Field(default=None, description="move under this facility")
    active: StrictBool | None = Field(
        default=None,
        description="false deactivates: its titles are refused on DICOM and its users cannot "
        "sign in; nothing is deleted",
    )
    workstations: list[WorkstationIn] | None = None


class FacilityOut(Model):
    code: str
    name: str
    tier: Tier
    parent: str | None
    active: bool
    workstations: list[WorkstationOut]
    report_destination: DestinationOut | None
    report_destination_href: str = Field(
        description="PUT a DICOM node's ae_title here to make it the report destination"
    )

    @classmethod
    def of(cls, f: ManagedFacility) -> FacilityOut:
        d = f.report_destination
        return cls(
            code=f.code,
            name=f.name,
            tier=f.tier,
            parent=f.parent,
            active=f.active,
            workstations=[WorkstationOut.of(w) for w in f.workstations],
            report_destination=DestinationOut(ae_title=d.ae_title, host=d.host, port=d.port)
            if d
            else None,
            report_destination_href=f"/api/v1/admin/facilities/{f.code}/report-destination",
        )


class FacilitiesOut(Model):
    facilities: list[FacilityOut]


class NodeIn(Model):
    """A DICOM node: a reader's desktop viewer (``username``: it queries as them) or a
    facility's node (``facility``: a move destination, a report destination)."""

    model_config = ConfigDict(extra="forbid")

    ae_title: AeTitle
    username: str | None = None
    facility: Code | None = None
    host: str | None = Field(default=None, max_length=253)
    port: int | None = Field(default=None, ge=1, le=65535)
    tls: StrictBool = False
    may_query: StrictBool = True
    move_destination: StrictBool = False
    peer_host: str | None = Field(
        default=None, description="where it calls from, when not its host"
    )
    certificate_sha256: str | None = None


class NodeOut(Model):
    id: int
    ae_title: str
    username: str | None
    facility: str = Field(description="its facility, or its reader's")
    host: str | None
    port: int | None
    tls: bool
    may_query: bool
    move_destination: bool
    peer_host: str | None
    certificate_sha256: str | None

    @classmethod
    def of(cls, m: ManagedNode) -> NodeOut:
        n = m.node
        return cls(
            id=m.id,
            ae_title=n.ae_title,
            username=m.username,
            facility=m.facility,
            host=n.host,
            port=n.port,
            tls=n.tls,
            may_query=n.may_query,
            move_destination=n.move_destination,
            peer_host=n.peer_host,
            certificate_sha256=n.cert_sha256,
        )


class NodesOut(Model):
    dicom_nodes: list[NodeOut]


class NodeDeleted(Model):
    id: int
    deleted: bool
