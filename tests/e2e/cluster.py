"""A scaled-out service on one machine: several ``telemed serve --role ...`` processes against
one PostgreSQL and one object store, started in parallel and stopped together.

Used by the scale test (tests/e2e/test_scale.py) and by the load bench (bench/load.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field

import psutil

from tests.e2e.harness import Service, running_service


@dataclass(frozen=True, kw_only=True)
class Shape:
    """How many processes of each role, and the options every one of them gets."""

    api: int = 2
    dicom: int = 2
    #: Listener processes of each dicom process (``--dicom-processes``).
    dicom_processes: int = 2
    workers: int = 3
    options: tuple[str, ...] = ()


@dataclass
class Cluster:
    api: list[Service] = field(default_factory=list)
    dicom: list[Service] = field(default_factory=list)
    workers: list[Service] = field(default_factory=list)

    @property
    def services(self) -> list[Service]:
        return [*self.api, *self.dicom, *self.workers]

    def processes(self) -> dict[str, psutil.Process]:
        """Every process of the cluster by a readable name (listener children included)."""
        named: dict[str, psutil.Process] = {}
        for service in self.services:
            assert service.proc is not None
            name = service.log_path.stem
            with contextlib.suppress(psutil.NoSuchProcess):
                parent = psutil.Process(service.proc.pid)
                named[name] = parent
                for n, child in enumerate(parent.children(recursive=True), start=1):
                    named[f"{name}.{n}"] = child
        return named


def _start(env: dict[str, str], args: tuple[str, ...], name: str) -> tuple[Service, ExitStack]:
    stack = ExitStack()
    try:
        service = stack.enter_context(running_service(env, *args, timeout_s=180, name=name))
    except BaseException:
        stack.close()
        raise
    return service, stack


@contextlib.contextmanager
def running_cluster(env: dict[str, str], shape: Shape) -> Iterator[Cluster]:
    """Every process of ``shape`` running and ready (started side by side), stopped together
    (SIGINT to each, in parallel) after the block. The database schema is expected to be
    migrated already (``telemed migrate``), so the processes do not race to migrate it."""
    plan: list[tuple[str, str, tuple[str, ...]]] = []
    plan += [("api", f"api{n}", ("--role", "api")) for n in range(1, shape.api + 1)]
    dicom_args = ("--role", "dicom", "--dicom-processes", str(shape.dicom_processes))
    plan += [("dicom", f"dicom{n}", dicom_args) for n in range(1, shape.dicom + 1)]
    plan += [("workers", f"worker{n}", ("--role", "worker")) for n in range(1, shape.workers + 1)]
    cluster = Cluster()
    stacks: list[ExitStack] = []
    with ThreadPoolExecutor(max_workers=len(plan)) as pool:
        futures = [
            (kind, pool.submit(_start, env, (*args, *shape.options), name))
            for kind, name, args in plan
        ]
        errors: list[BaseException] = []
        for kind, future in futures:
            try:
                service, stack = future.result()
            except BaseException as exc:
                errors.append(exc)
                continue
            stacks.append(stack)
            getattr(cluster, kind).append(service)
    try:
        if errors:
            raise errors[0]
        yield cluster
    finally:
        with ThreadPoolExecutor(max_workers=max(1, len(stacks))) as pool:
            list(pool.map(lambda stack: stack.close(), stacks))
