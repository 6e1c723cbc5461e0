"""joblib's way of registering a compressor: ``register_compressor(name, CompressorWrapper(...))``.

The wrapped class is a real compressed-file class of the standard library (or lz4's); the
archives are real files, read back in this process and in a fresh one.
"""

from __future__ import annotations

import bz2
import io
import lzma
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import zoblib
from zoblib.archive.compression import EXTENSION_COMPRESSORS, CompressorWrapper


def _name() -> str:
    return f"test-wrapper-{uuid.uuid4().hex[:8]}"


class CountingBZ2File(bz2.BZ2File):
    """bz2's file class, counting the levels it is opened with (to see it is the one used)."""

    levels: ClassVar[list[int]] = []

    def __init__(self, fileobj: io.BytesIO, mode: str, compresslevel: int = 9) -> None:
        if "w" in mode:
            CountingBZ2File.levels.append(compresslevel)
        super().__init__(fileobj, mode, compresslevel=compresslevel)


def test_a_wrapped_file_class_compresses_the_chunks(tmp_path: Path) -> None:
    name = _name()
    CountingBZ2File.levels.clear()
    zoblib.register_compressor(name, CompressorWrapper(obj=CountingBZ2File, prefix=b"BZh"))
    value = {"a": np.arange(200_000, dtype=np.int64) % 7, "b": "text"}
    plain = zoblib.dump(value, tmp_path / "plain.pkl")[0]
    packed = zoblib.dump(value, tmp_path / "packed.pkl", compress=(name, 5))[0]
    assert CountingBZ2File.levels and set(CountingBZ2File.levels) == {5}
    assert Path(packed).stat().st_size < Path(plain).stat().st_size / 10
    loaded = zoblib.load(packed)
    np.testing.assert_array_equal(loaded["a"], value["a"])
    assert loaded["b"] == "text"


class LZMAWrapper(CompressorWrapper):
    """A wrapper adapting a class whose parameters differ (joblib's own LZMA wrapper does so)."""

    def __init__(self, extension: str = "") -> None:
        super().__init__(obj=lzma.LZMAFile, prefix=b"\xfd7zXZ", extension=extension)

    def compressor_file(self, fileobj: Any, compresslevel: int | None = None) -> Any:
        return lzma.LZMAFile(fileobj, "wb", preset=compresslevel)


def test_the_wrappers_extension_selects_it(tmp_path: Path) -> None:
    name = _name()
    extension = f".{name[-8:]}"
    zoblib.register_compressor(name, LZMAWrapper(extension=extension))
    assert EXTENSION_COMPRESSORS[extension] == name
    value = np.zeros(300_000)
    path = zoblib.dump(value, tmp_path / f"data{extension}")[0]
    assert Path(path).stat().st_size < value.nbytes / 100
    np.testing.assert_array_equal(zoblib.load(path), value)


def test_reading_needs_the_same_registration_in_a_fresh_process(tmp_path: Path) -> None:
    name = _name()
    zoblib.register_compressor(name, CompressorWrapper(obj=bz2.BZ2File, prefix=b"BZh"))
    path = zoblib.dump(np.arange(100_000.0), tmp_path / "r.pkl", compress=name)[0]
    script = textwrap.dedent(
        f"""
        import bz2, sys
        import zoblib
        from zoblib.archive.compression import CompressorWrapper
        try:
            zoblib.load({path!r})
        except ValueError as error:
            print("refused:", error)
        zoblib.register_compressor({name!r}, CompressorWrapper(obj=bz2.BZ2File, prefix=b"BZh"))
        print("sum:", zoblib.load({path!r}).sum())
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert f"compressor {name!r} is not registered in this process" in out
    assert "sum: 4999950000.0" in out


def test_joblibs_checks_and_messages() -> None:
    class NotAFile:
        pass

    with pytest.raises(
        ValueError, match="Compressor 'fileobj_factory' attribute should implement the file object"
    ):
        zoblib.register_compressor(_name(), CompressorWrapper(obj=NotAFile, prefix=b"x"))
    name = _name()
    zoblib.register_compressor(name, CompressorWrapper(obj=bz2.BZ2File))
    with pytest.raises(ValueError, match=f"Compressor '{name}' already registered."):
        zoblib.register_compressor(name, CompressorWrapper(obj=lzma.LZMAFile))
    zoblib.register_compressor(name, CompressorWrapper(obj=lzma.LZMAFile), force=True)
    wrapper = CompressorWrapper(obj=lzma.LZMAFile, prefix=b"\xfd7zXZ", extension=".xz")
    assert (wrapper.fileobj_factory, wrapper.prefix, wrapper.extension) == (lzma.LZMAFile, b"\xfd7zXZ", ".xz")
    buffer = io.BytesIO()
    with wrapper.compressor_file(buffer) as out:
        out.write(b"joblib's wrapper API")
    with wrapper.decompressor_file(io.BytesIO(buffer.getvalue())) as back:
        assert back.read() == b"joblib's wrapper API"
