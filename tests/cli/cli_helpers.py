"""Helpers of the ``zoblib`` command's tests: the command line, a model, a cache script, damage."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

#: The command as the tests run it: a fresh interpreter, as a user's shell would start.
COMMAND = [sys.executable, "-m", "zoblib"]
#: The console script pip installed beside the interpreter.
SCRIPT = Path(sys.executable).with_name("zoblib")
SUFFIXES = {"zip": ".zob", "zarr": ".zarr", "hdf5": ".h5"}

Run = Callable[..., subprocess.CompletedProcess[str]]


def model() -> dict[str, Any]:
    """An object with an array stored alone, packed arrays, and small arrays kept inline."""
    rng = np.random.default_rng(0)
    return {
        "weights": np.arange(400_000, dtype=np.float64).reshape(800, 500),  # 3.2 MB: alone
        "layers": [{"W": rng.random((100, 100)), "b": np.full(20_000, i, np.int32)} for i in range(2)],
        "bias": np.zeros(5),  # 40 bytes: inline in the skeleton
        "name": "demo",
    }


CACHE_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import zoblib

    memory = zoblib.Memory(sys.argv[1], verbose=0)

    @memory.cache
    def square(n):
        return np.arange(n) ** 2

    @memory.cache
    def add(a, b=1):
        return a + b

    for n in (10, 1_000, 200_000):
        square(n)
    add(1)
    add(2, b=3)
    """
)


def flip_stored_byte(path: Path, node: str, *, at: int = 100) -> None:
    """Invert one stored byte of the first chunk of ``node`` (an uncompressed node), in place."""
    if path.is_dir():  # a .zarr directory: the chunk is a file
        offset, target = at, path / node / "c" / "0"
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(f"{node}/c/0")
        with open(path, "rb") as file:  # the local header's own lengths give the data's offset
            file.seek(info.header_offset + 26)
            name_length, extra_length = np.frombuffer(file.read(4), "<u2")
        offset = info.header_offset + 30 + int(name_length) + int(extra_length) + at
        target = path
    else:
        with h5py.File(path, "r") as file:
            offset = int(file[node].id.get_offset()) + at
        target = path
    with open(target, "r+b") as file:
        file.seek(offset)
        byte = file.read(1)
        file.seek(offset)
        file.write(bytes([byte[0] ^ 0xFF]))
