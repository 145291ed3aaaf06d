"""The deployment files agree with the service and with themselves: every manifest parses,
every role has its health checks on paths the service answers, the grace periods outlast the
drains, every variable they set is one the service reads, every Service, budget and
autoscaler finds what it names, and the state layers keep more than one copy. No container
engine runs here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from teleradiology.core.credentials import example_secrets_in
from teleradiology.dimse.listener import DRAIN_S
from teleradiology.http.app import create_web_app
from teleradiology.http.web.send import DICOM_PARSER_VERSION
from teleradiology.http.web.viewer import OHIF_VERSION
from teleradiology.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
_READ = re.compile(r'"((?:TELEMED|DATABASE|STORAGE)_[A-Z0-9_]+)"')
_REFERENCE = re.compile(r"\$\(([A-Z0-9_]+)\)")
ROLES = ("api", "dicom", "worker")
WORKLOADS = ("Deployment", "StatefulSet", "Job")
#: Each service process holds at most this many PostgreSQL connections (pool and job queue).
CONNECTIONS_PER_PROCESS = 11


def _documents(*files: str) -> list[dict[str, Any]]:
    paths = [KUBERNETES / f for f in files] if files else sorted(KUBERNETES.glob("*.yaml"))
    found: list[dict[str, Any]] = []
    for path in paths:
        found.extend(d for d in yaml.safe_load_all(path.read_text("utf-8")) if d)
    return found


def _of_kind(*kinds: str) -> list[dict[str, Any]]:
    return [d for d in _documents() if d["kind"] in kinds]


def _named(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in _of_kind(kind) if d["metadata"]["name"] == name]
    return found


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def _role(role: str) -> dict[str, Any]:
    return _named("Deployment", f"telemed-{role}")


def _read_by_the_service() -> set[str]:
    """The environment variables the code reads (their names written out in it)."""
    names: set[str] = set()
    for path in (ROOT / "teleradiology").rglob("*.py"):
        names.update(_READ.findall(path.read_text("utf-8")))
    return names


def _selects(selector: dict[str, str], workload: dict[str, Any]) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in selector.items())


def test_every_manifest_parses_and_names_its_kind() -> None:
    documents = _documents()
    assert all(d.get("apiVersion") and d.get("kind") for d in documents)
    telemed = {
        d["metadata"]["name"]
        for d in _of_kind("Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/name"] == "telemed"
    }
    assert telemed == {f"telemed-{role}" for role in ROLES}


def test_kustomize_applies_every_file_but_the_secrets_and_the_one_shot_jobs() -> None:
    (kustomization,) = _documents("kustomization.yaml")
    listed = set(kustomization["resources"])
    on_purpose = {"kustomization.yaml", "secret.example.yaml"}
    on_purpose |= {f"{name}.yaml" for name in ("migrate-job", "network-import-job")}
    assert listed == {p.name for p in KUBERNETES.glob("*.yaml")} - on_purpose
    for name in on_purpose - {"kustomization.yaml", "secret.example.yaml"}:
        assert all(d["kind"] == "Job" for d in _documents(name))


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_probed_on_what_it_serves(role: str, tmp_path: Path) -> None:
    (container,) = _pod(_role(role))["containers"]
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


def test_every_long_running_container_is_probed_on_a_port_it_opens() -> None:
    for workload in _of_kind("Deployment", "StatefulSet"):
        for container in _pod(workload)["containers"]:
            names = {p["name"] for p in container.get("ports", [])}
            for kind in ("readinessProbe", "livenessProbe"):
                probe = container[kind]
                (how,) = [probe[k] for k in ("httpGet", "tcpSocket") if k in probe]
                assert how["port"] in names, (workload["metadata"]["name"], kind)


def test_the_dicom_pods_outlast_their_drain() -> None:
    pod = _pod(_role("dicom"))
    (container,) = pod["containers"]
    pause = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pause + DRAIN_S + 10


@pytest.mark.parametrize("role", ["api", "dicom"])
def test_the_serving_roles_leave_their_service_before_they_stop(role: str) -> None:
    pod = _pod(_role(role))
    (container,) = pod["containers"]
    assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] >= 30


@pytest.mark.parametrize("role", ROLES)
def test_replicas_of_a_role_prefer_different_nodes(role: str) -> None:
    anti = _pod(_role(role))["affinity"]["podAntiAffinity"]
    (term,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert _selects(term["podAffinityTerm"]["labelSelector"]["matchLabels"], _role(role))


def test_every_scratch_volume_has_a_size_limit() -> None:
    for workload in _of_kind(*WORKLOADS):
        for volume in _pod(workload).get("volumes", []):
            if "emptyDir" in volume:
                assert volume["emptyDir"].get("sizeLimit"), (
                    workload["metadata"]["name"],
                    volume["name"],
                )


def test_every_service_selects_pods_that_open_its_port() -> None:
    workloads = _of_kind("Deployment", "StatefulSet")
    for service in _of_kind("Service"):
        (selected,) = [w for w in workloads if _selects(service["spec"]["selector"], w)]
        opened = {
            p["name"]: p["containerPort"]
            for c in _pod(selected)["containers"]
            for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert target in opened or target in opened.values(), service["metadata"]["name"]


def test_budgets_and_autoscalers_name_what_exists() -> None:
    workloads = _of_kind("Deployment", "StatefulSet")
    budgets = _of_kind("PodDisruptionBudget")
    for budget in budgets:
        assert budget["spec"]["maxUnavailable"] == 1
        assert [w for w in workloads if _selects(budget["spec"]["selector"]["matchLabels"], w)]
    covered = {
        w["metadata"]["name"]
        for w in workloads
        for b in budgets
        if _selects(b["spec"]["selector"]["matchLabels"], w)
    }
    replicated = {w["metadata"]["name"] for w in workloads if w["spec"].get("replicas", 1) > 1}
    assert replicated <= covered
    scaled = {h["spec"]["scaleTargetRef"]["name"] for h in _of_kind("HorizontalPodAutoscaler")}
    assert scaled == {"telemed-api", "telemed-worker"}
    for hpa in _of_kind("HorizontalPodAutoscaler"):
        assert _named(hpa["spec"]["scaleTargetRef"]["kind"], hpa["spec"]["scaleTargetRef"]["name"])
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_the_roles_at_their_largest_stay_under_max_connections() -> None:
    largest = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]["maxReplicas"]
        for h in _of_kind("HorizontalPodAutoscaler")
    }
    dicom = _role("dicom")
    args = _pod(dicom)["containers"][0]["args"]
    processes = int(args[args.index("--dicom-processes") + 1]) if "--dicom-processes" in args else 1
    pods = largest["telemed-api"] + largest["telemed-worker"]
    total = CONNECTIONS_PER_PROCESS * (pods + dicom["spec"]["replicas"] * processes)
    cluster = _named("Cluster", "telemed-pg")
    assert total < int(cluster["spec"]["postgresql"]["parameters"]["max_connections"]) * 0.9


def test_postgresql_keeps_three_synchronous_copies_and_backs_up() -> None:
    cluster = _named("Cluster", "telemed-pg")["spec"]
    assert cluster["instances"] == 3
    assert cluster["affinity"]["podAntiAffinityType"] == "required"
    assert cluster["postgresql"]["synchronous"]["number"] >= 1
    assert cluster["postgresql"]["synchronous"]["dataDurability"] == "required"
    (archiver,) = [p for p in cluster["plugins"] if p.get("isWALArchiver")]
    assert _named("ObjectStore", archiver["parameters"]["barmanObjectName"])
    (nightly,) = _of_kind("ScheduledBackup")
    assert nightly["spec"]["cluster"]["name"] == "telemed-pg"
    assert nightly["spec"]["pluginConfiguration"]["name"] == archiver["name"]
    assert len(nightly["spec"]["schedule"].split()) == 6


def test_the_object_store_keeps_two_copies_on_different_nodes() -> None:
    masters = _named("StatefulSet", "seaweedfs-master")
    volumes = _named("StatefulSet", "seaweedfs-volume")
    assert masters["spec"]["replicas"] % 2 == 1
    assert masters["spec"]["replicas"] >= 3
    assert volumes["spec"]["replicas"] >= 3
    (master,) = _pod(masters)["containers"]
    assert "-defaultReplication=001" in master["args"]
    peers = next(a for a in master["args"] if a.startswith("-peers="))
    assert len(peers.split(",")) == masters["spec"]["replicas"]
    for workload in (masters, volumes):
        anti = _pod(workload)["affinity"]["podAntiAffinity"]
        (term,) = anti["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        claims = {c["metadata"]["name"] for c in workload["spec"]["volumeClaimTemplates"]}
        mounts = {m["name"] for m in _pod(workload)["containers"][0]["volumeMounts"]}
        assert mounts <= claims


def _environment(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def test_every_variable_set_is_one_the_service_reads() -> None:
    read = _read_by_the_service()
    assert {"DATABASE_URL", "STORAGE_URL", "TELEMED_DATA_DIR"} <= read
    (config,) = _of_kind("ConfigMap")
    assert set(config["data"]) <= read
    for workload in _of_kind(*WORKLOADS):
        for container in _pod(workload)["containers"]:
            if not container["image"].startswith("telemed"):
                continue
            env = _environment(container)
            referenced = {n for e in env.values() for n in _REFERENCE.findall(e.get("value", ""))}
            assert set(env) <= read | referenced, workload["metadata"]["name"]
            assert referenced <= set(env)
            assert {"DATABASE_URL", "STORAGE_URL"} <= set(env)
    compose = yaml.safe_load(COMPOSE.read_text("utf-8"))
    telemed = compose["x-telemed"]
    assert set(telemed["environment"]) <= read
    images = {s.get("image", telemed["image"]) for s in compose["services"].values() if "<<" in s}
    assert images <= {telemed["image"]}
    for name in ROLES:
        assert "healthcheck" in compose["services"][name], name


def test_the_roles_reach_the_primary_and_the_s3_gateway_of_the_manifests() -> None:
    secrets = {d["metadata"]["name"]: d for d in _documents("secret.example.yaml")}
    cluster = _named("Cluster", "telemed-pg")["metadata"]["name"]
    (s3_service,) = [s for s in _of_kind("Service") if s["metadata"]["name"] == "telemed-s3"]
    s3_port = s3_service["spec"]["ports"][0]["port"]
    for workload in _of_kind(*WORKLOADS):
        for container in _pod(workload)["containers"]:
            env = _environment(container)
            for entry in env.values():
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] != f"{cluster}-app":
                    assert ref["key"] in secrets[ref["name"]]["stringData"]
            for from_ in container.get("envFrom", []):
                assert "configMapRef" in from_ or from_["secretRef"]["name"] in secrets
            if not container["image"].startswith("telemed"):
                continue
            database = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
            assert (database["name"], database["key"]) == (f"{cluster}-app", "uri")
            storage = urlsplit(env["STORAGE_URL"]["value"])
            assert (storage.scheme, storage.hostname, storage.port) == ("s3", "telemed-s3", s3_port)
    for secret in secrets.values():
        assert not any(secret["stringData"].values()), "an example Secret carries a value"


def test_the_one_shot_jobs_migrate_and_import_the_operators_network() -> None:
    (migrate,) = _pod(_named("Job", "telemed-migrate"))["containers"]
    assert migrate["args"] == ["migrate"]
    (config,) = _of_kind("ConfigMap")
    assert config["data"]["TELEMED_MIGRATE_ON_START"] == "0"
    importer = _pod(_named("Job", "telemed-network-import"))
    (container,) = importer["containers"]
    assert container["args"][:2] == ["network", "import"]
    assert "demo" not in container["args"][2]
    mounted = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    (volume,) = [v for v in importer["volumes"] if v["name"] == mounted["/etc/telemed"]]
    assert volume["configMap"]["name"] == "telemed-network"
    assert container["args"][2].startswith("/etc/telemed/")


def _assignments(path: Path) -> dict[str, str]:
    lines = path.read_text("utf-8").splitlines()
    pairs = [line.split("=", 1) for line in lines if "=" in line and not line.startswith("#")]
    return {name.strip(): value.strip() for name, value in pairs}


def test_the_env_template_names_every_variable_compose_reads_and_fills_in_no_secret() -> None:
    text = COMPOSE.read_text("utf-8")
    wanted = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    template = COMPOSE.parent / ".env.example"
    named = set(re.findall(r"^#? ?([A-Z0-9_]+)=", template.read_text("utf-8"), re.M))
    assert wanted <= named
    example = _assignments(template)
    assert all(not example[name] for name in required), "a required value is filled in"
    demo = _assignments(COMPOSE.parent / "demo.env")
    assert required <= {name for name, value in demo.items() if value}


def test_the_image_serves_the_viewer_and_dicom_reader_the_makefile_pins() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text("utf-8")
    makefile = (ROOT / "Makefile").read_text("utf-8")
    for name, served_version in (
        ("OHIF_VERSION", OHIF_VERSION),
        ("DICOM_PARSER_VERSION", DICOM_PARSER_VERSION),
    ):
        pinned = re.search(rf"^{name} := (\S+)$", makefile, re.M)
        built = re.search(rf"^ARG {name}=(\S+)$", dockerfile, re.M)
        assert pinned is not None
        assert built is not None
        assert built.group(1) == pinned.group(1) == served_version
    served = re.search(r"TELEMED_VIEWER_DIR=(\S+)", dockerfile)
    copied = re.search(r"^COPY --from=viewer \S+ (\S+)$", dockerfile, re.M)
    assert served is not None
    assert copied is not None
    assert served.group(1) == copied.group(1)
    assert "TELEMED_VIEWER_DIR" in _read_by_the_service()
    # the send page's DICOM reader, beside the viewer's folder where the service looks for it
    beside = Path(served.group(1)).parents[1] / f"dicom-parser-{DICOM_PARSER_VERSION}"
    assert f"COPY --from=viewer /viewer/dicom-parser {beside}\n" in dockerfile


class _ComposeLoader(yaml.SafeLoader):
    """Compose's own tags (``!override``, ``!reset``) read as the value they carry."""


_ComposeLoader.add_multi_constructor(
    "!",
    lambda loader, _tag, node: (
        loader.construct_sequence(node)
        if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node)
        if isinstance(node, yaml.MappingNode)
        else loader.construct_scalar(node)
    ),
)


def _compose(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(path.read_text("utf-8"), Loader=_ComposeLoader)  # noqa: S506
    return loaded


def test_only_the_demo_imports_the_demo_network_and_it_runs_as_the_demo() -> None:
    production = _compose(COMPOSE)
    for name, service in production["services"].items():
        assert "--demo" not in service.get("command", []), name
    assert "demo-network" not in str(production["services"]["network-import"])
    demo = _compose(COMPOSE.parent / "docker-compose.demo.yml")["services"]
    assert "demo-network.toml" in str(demo["network-import"]["volumes"])
    for role in ROLES:
        command = demo[role]["command"]
        assert command[:2] == ["serve", "--demo"], role
        assert command[2:] == production["services"][role]["command"][1:], role


def test_every_example_secret_of_the_deployment_files_is_refused() -> None:
    """The service refuses to start over what ``demo.env`` (and ``.env.example``, should it
    carry a value again) gives as a password or secret key."""
    values = {
        f"{path.name}:{name}": value
        for path in (COMPOSE.parent / "demo.env", COMPOSE.parent / ".env.example")
        for name, value in _assignments(path).items()
        if value and re.search("PASSWORD|SECRET", name)
    }
    assert len(values) >= 3
    assert example_secrets_in(values) == sorted(values)
    assert example_secrets_in({"DATABASE_URL": "postgresql://t:Xq7unique@db/telemed"}) == []
