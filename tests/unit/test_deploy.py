"""The deployment files agree with the service: every manifest parses, every role has its
health checks on paths the service answers, the grace periods outlast the drains, and every
variable they set is one the service reads. No container engine runs here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from teleradiology.dimse.listener import DRAIN_S
from teleradiology.http.app import create_web_app
from teleradiology.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
_READ = re.compile(r'"((?:TELEMED|DATABASE|STORAGE)_[A-Z0-9_]+)"')


def _documents() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        found.extend(d for d in yaml.safe_load_all(path.read_text("utf-8")) if d)
    return found


def _deployments() -> list[dict[str, Any]]:
    return [d for d in _documents() if d["kind"] in ("Deployment", "StatefulSet")]


def _read_by_the_service() -> set[str]:
    """The environment variables the code reads (their names written out in it)."""
    names: set[str] = set()
    for path in (ROOT / "teleradiology").rglob("*.py"):
        names.update(_READ.findall(path.read_text("utf-8")))
    return names


def test_every_manifest_parses_and_names_its_kind() -> None:
    documents = _documents()
    assert len(documents) >= 8
    assert all(d.get("apiVersion") and d.get("kind") for d in documents)
    assert {d["metadata"]["name"] for d in _deployments()} == {
        "telemed-api",
        "telemed-dicom",
        "telemed-worker",
    }


@pytest.mark.parametrize("role", ["api", "dicom", "worker"])
def test_each_role_is_probed_on_what_it_serves(role: str, tmp_path: Path) -> None:
    (deployment,) = [d for d in _deployments() if d["metadata"]["name"] == f"telemed-{role}"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"][:3] == ["serve", "--role", role]
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    paths = {
        r.resource.canonical
        for r in create_web_app(Settings(data_dir=tmp_path)).router.routes()
        if r.resource is not None
    }
    for kind in ("readinessProbe", "livenessProbe"):
        probe = container[kind]
        if "httpGet" in probe:
            assert probe["httpGet"]["path"] in paths
            assert ports[probe["httpGet"]["port"]] == 8080
        else:
            assert ports[probe["tcpSocket"]["port"]] == 11112


def test_the_dicom_pods_outlast_their_drain() -> None:
    (dicom,) = [d for d in _deployments() if d["metadata"]["name"] == "telemed-dicom"]
    pod = dicom["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pause = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pause + DRAIN_S + 10


def test_every_variable_set_is_one_the_service_reads() -> None:
    read = _read_by_the_service()
    assert {"DATABASE_URL", "STORAGE_URL", "TELEMED_DATA_DIR"} <= read
    (config,) = [d for d in _documents() if d["kind"] == "ConfigMap"]
    assert set(config["data"]) <= read
    compose = yaml.safe_load(COMPOSE.read_text("utf-8"))
    telemed = compose["x-telemed"]
    assert set(telemed["environment"]) <= read
    images = {s.get("image", telemed["image"]) for s in compose["services"].values() if "<<" in s}
    assert images <= {telemed["image"]}
    for name in ("api", "dicom", "worker"):
        assert "healthcheck" in compose["services"][name], name
