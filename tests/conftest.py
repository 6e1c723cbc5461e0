"""Shared fixtures: the containers an archive can live in, a real S3 server, and the hypothesis
profile."""

from __future__ import annotations

import io
import itertools
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import pytest
from hypothesis import HealthCheck, settings

import zoblib
from s3_server import S3Server, running_s3_server

# No example database: runs leave nothing behind in the working tree.
settings.register_profile(
    "ci", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow], database=None
)
settings.register_profile("dev", parent=settings.get_profile("ci"), max_examples=10)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: The containers of the archive format: a ZIP file by path, a ``.zarr`` directory, an HDF5 file,
#: and a ZIP written to and read from an open binary file object (in memory, so nothing can be
#: memmapped).
CONTAINERS = ("zip", "zarr", "hdf5", "fileobj")
SUFFIXES = {"zarr": ".zarr", "hdf5": ".h5"}


class ArchiveLocation:
    """One place an archive is dumped to and loaded from, in one container."""

    def __init__(self, container: str, directory: Path, stem: str) -> None:
        self.container = container
        suffix = SUFFIXES.get(container, ".pkl")
        self.path = directory / f"{stem}{suffix}"
        self.buffer: io.BytesIO | None = None

    def dump(self, value: Any, **kwargs: Any) -> list[str] | None:
        if self.container == "fileobj":
            self.buffer = io.BytesIO()
            return zoblib.dump(value, self.buffer, **kwargs)
        return zoblib.dump(value, self.path, **kwargs)

    def load(self, **kwargs: Any) -> Any:
        """``zoblib.load`` of the archive, keeping the stored byte order (exact round trips)."""
        kwargs.setdefault("ensure_native_byte_order", False)
        if self.container == "fileobj":
            assert self.buffer is not None, "dump first"
            return zoblib.load(io.BytesIO(self.buffer.getvalue()), **kwargs)
        return zoblib.load(self.path, **kwargs)

    def read_key(self, key: str) -> bytes:
        """The bytes stored under a Zarr key (``zarr.json``, ``arrays/0/c/0``, ...)."""
        if self.container == "hdf5":
            pytest.skip("an HDF5 archive has datasets, not Zarr keys")
        if self.container == "zarr":
            return (self.path / key).read_bytes()
        source: Any = self.path if self.buffer is None else io.BytesIO(self.buffer.getvalue())
        with zipfile.ZipFile(source) as archive:
            return archive.read(key)

    def root_record(self) -> dict[str, Any]:
        """The root group's ``zoblib`` attribute."""
        if self.container == "hdf5":
            with h5py.File(self.path, "r") as file:
                hdf5_record: dict[str, Any] = json.loads(file.attrs["zoblib"])
            return hdf5_record
        record: dict[str, Any] = json.loads(self.read_key("zarr.json"))["attributes"]["zoblib"]
        return record

    def remove(self) -> None:
        self.buffer = None
        if self.path.is_dir():
            shutil.rmtree(self.path)
        elif self.path.exists():
            self.path.unlink()


class Container:
    """A container kind that hands out fresh archive locations (usable from hypothesis tests)."""

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.directory = directory
        self._numbers = itertools.count()

    def __repr__(self) -> str:
        return f"Container({self.name!r})"

    def location(self) -> ArchiveLocation:
        return ArchiveLocation(self.name, self.directory, f"archive-{next(self._numbers)}")


@pytest.fixture(scope="session", params=CONTAINERS)
def container(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Container:
    """Each container kind; session-scoped so hypothesis tests may use it."""
    return Container(request.param, tmp_path_factory.mktemp(f"archives-{request.param}"))


@pytest.fixture
def archive(container: Container) -> Iterator[ArchiveLocation]:
    """A fresh archive location in each container, removed after the test."""
    location = container.location()
    yield location
    location.remove()


@pytest.fixture
def mount_tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mounts real small tmpfs file systems (``mount_tmpfs("16m")``), unmounted afterwards.

    Needs root and mount permission; the test is skipped elsewhere.
    """
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        mount_point = tmp_path / f"tmpfs-{len(mounted)}"
        mount_point.mkdir()
        command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)]
        result = subprocess.run(command, capture_output=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.decode().strip()}")
        mounted.append(mount_point)
        return mount_point

    yield mount
    for mount_point in mounted:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """A real S3 server (moto) on loopback, started once for the session (see ``s3_server.py``)."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    pytest.importorskip("boto3")
    with running_s3_server() as server:
        yield server


@pytest.fixture(autouse=True, scope="module")
def _environment_restored_after_each_module() -> Iterator[None]:
    """Give every test module the environment the session started with.

    A dask ``LocalCluster`` of worker processes leaves ``OMP_NUM_THREADS=1`` (and MKL's and
    OpenBLAS's) in ``os.environ`` (distributed's nanny): later modules' worker processes, and
    joblib's own suite run in a subprocess, would start with one BLAS thread.
    """
    saved = dict(os.environ)
    yield
    if dict(os.environ) != saved:
        os.environ.clear()
        os.environ.update(saved)
