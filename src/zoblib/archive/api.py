"""``dump`` and ``load``: joblib's persistence functions, on Zarr v3 archives."""

from __future__ import annotations

import io
import os
import pickle
import warnings
from collections.abc import Mapping
from typing import IO, Any

from zoblib.archive.compression import is_adaptive, resolve_compression
from zoblib.archive.containers import container_format, open_reader, open_writer
from zoblib.archive.containers.hdf5 import hdf5_codec
from zoblib.archive.containers.streams import is_raw_file
from zoblib.archive.containers.urls import is_url, local_path
from zoblib.archive.guard import reading
from zoblib.archive.reader import MMAP_MODES, ArchiveReader
from zoblib.archive.writer import WriteOptions, write_archive
from zoblib.errors import ArchiveWriteError, ZoblibError
from zoblib.joblib_format.reader import load_joblib_file
from zoblib.joblib_format.sniffing import identify
from zoblib.progress import ByteCounter, ProgressOption, byte_progress
from zoblib.safety.joblib_files import safe_joblib_unpickler
from zoblib.safety.policy import Policy, Trusted
from zoblib.safety.switch import safe_load_default

Target = str | os.PathLike[str] | IO[bytes]


def dump(
    value: Any,
    filename: Target,
    compress: Any = 0,
    protocol: int | None = None,
    *,
    format: str | None = None,
    inline_threshold: int = WriteOptions.inline_threshold,
    pack_threshold: int = WriteOptions.pack_threshold,
    chunk_nbytes: int = WriteOptions.chunk_nbytes,
    fsync: bool = False,
    checksum: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    progress: ProgressOption = False,
) -> list[str] | None:
    """Persist a Python object into one archive, its big numpy arrays as Zarr v3 arrays.

    Parameters
    ----------
    value
        Any picklable object (objects plain pickle refuses go through cloudpickle).
    filename
        Where to write: a path ending in ``.zarr`` gives a Zarr directory store, ``.h5`` or
        ``.hdf5`` an HDF5 file, any other path a single ZIP file; an open binary file object
        also gives a ZIP file. An fsspec URL (``s3://``, ``gs://``, ``az://``, ``memory://``,
        ``file://``) writes there: ``.zarr`` as one object per chunk, published root record
        last; anything else as one ZIP object, uploaded once complete (HDF5 is refused).
    compress
        joblib's forms: ``False``/``0`` (none), ``True``, an int 1-9 (Blosc lz4/zstd with
        shuffle), a name (``'zlib'``, ``'gzip'``, ``'bz2'``, ``'lzma'``, ``'xz'``, ``'lz4'``,
        ``'zstd'``, ``'blosc'`` or a registered one), a ``(name, level)`` tuple, or a numcodecs
        codec. With no ``compress``, a filename ending in ``.z``, ``.gz``, ``.bz2``, ``.xz``,
        ``.lzma`` or ``.lz4`` picks that compressor.
    protocol
        Pickle protocol of the skeleton (default: the highest).
    format
        Force the container: ``'zip'``, ``'zarr'`` or ``'hdf5'``.
    inline_threshold, pack_threshold, chunk_nbytes
        Arrays under ``inline_threshold`` bytes stay in the pickle skeleton; arrays under
        ``pack_threshold`` share packs; compressed chunks hold about ``chunk_nbytes`` bytes.
    fsync
        Flush the archive to disk before publishing it under its name, so that it survives a
        power cut (the writeback overlaps with the writing). Off by default, as in numpy, h5py,
        zarr and joblib: the archive is written aside and renamed into place, so a killed
        process never leaves half an archive, but after a power cut a file written in the last
        seconds may be lost or fail its checksums. ``True`` for archives that must survive one.
    checksum
        Protect every chunk with a CRC-32C, checked on every read (``False`` only for scratch
        data that lives as long as a process, as ``Parallel``'s).
    storage_options
        For a URL: options of its fsspec file system (``endpoint_url``, ``key``, ``anon``...).
    progress
        ``True`` draws a bar of the bytes written (arrays and skeleton, before compression) on
        standard error, advancing chunk by chunk: tqdm's when installed (a widget in Jupyter),
        else a text bar. A function is called with ``(bytes_done, bytes_total)`` instead.
        ``False`` (the default) draws nothing, as joblib. A zoblib extension.

    Returns
    -------
    list of str or None
        The paths (or the URL) written; ``None`` when ``filename`` is a file object (as joblib).

    Raises
    ------
    CompressionError
        For an invalid ``compress``.
    ArchiveError
        If the target is a directory that is not an archive (it is never replaced).
    ArchiveWriteError
        If writing fails (disk full, no permission); the previous archive is left untouched.

    Examples
    --------
    >>> import os, tempfile, numpy as np, zoblib
    >>> path = os.path.join(tempfile.mkdtemp(), "data.pkl")
    >>> zoblib.dump({"x": np.arange(10)}, path) == [path]
    True
    >>> int(zoblib.load(path)["x"].sum())
    45
    """
    if not isinstance(filename, (str, os.PathLike)) and not hasattr(filename, "write"):
        # People swap the arguments (``dump("model.pkl", model)``): say so, as joblib does.
        raise ValueError(
            "Second argument should be a filename or a file-like object, "
            f"{filename!r} (type {type(filename)}) was given."
        )
    _check_storage_options(filename, storage_options)
    codec = resolve_compression(compress, None if hasattr(filename, "write") else filename)
    container = container_format(filename, format)
    if container == "hdf5" and not is_url(filename):
        codec = hdf5_codec(codec, os.fspath(filename))  # type: ignore[arg-type]
    options = WriteOptions(
        codec=codec,
        protocol=pickle.HIGHEST_PROTOCOL if protocol is None else protocol,
        inline_threshold=inline_threshold,
        pack_threshold=max(pack_threshold, inline_threshold),
        chunk_nbytes=chunk_nbytes,
        checksum=checksum,
        adaptive=is_adaptive(compress),
    )
    target: str | IO[bytes] = os.fspath(filename) if isinstance(filename, (str, os.PathLike)) else filename
    where = target if isinstance(target, str) else str(getattr(target, "name", "<file object>"))
    try:
        writer = open_writer(target, container, durable=fsync, storage_options=storage_options)
    except ZoblibError:
        raise
    except OSError as exc:
        raise _write_error(where, exc) from exc
    try:
        with byte_progress(progress, os.path.basename(where)) as counter:
            write_archive(value, writer, options, counter)
            written = writer.commit()
    except BaseException as exc:
        writer.abort()
        if isinstance(exc, OSError) and not isinstance(exc, ZoblibError):
            raise _write_error(where, exc) from exc
        raise
    return written if isinstance(target, str) else None


def _write_error(path: str, exc: OSError) -> ArchiveWriteError:
    reason = exc.strerror or str(exc)
    return ArchiveWriteError(
        path, f"cannot write the archive ({reason}); the previous archive, if any, is untouched", exc.errno
    )


def load(
    filename: Target,
    mmap_mode: str | None = None,
    ensure_native_byte_order: bool | str = "auto",
    *,
    verify: bool = False,
    safe: bool | None = None,
    trusted: Trusted = (),
    storage_options: Mapping[str, Any] | None = None,
    progress: ProgressOption = False,
) -> Any:
    """Rebuild an object saved with :func:`dump`, or with ``joblib.dump``.

    Files written by ``joblib.dump`` (any joblib version since 0.8, uncompressed or compressed
    with zlib, gzip, bz2, lzma, xz or lz4, and joblib < 0.10's files with ``.npy`` files beside
    them) load too, recognised by their content, not their name, without joblib installed; so do
    plain pickles, which joblib files without arrays are. ``mmap_mode`` maps the arrays of an
    uncompressed joblib file as joblib does; a compressed one is read into memory with joblib's
    warning. Such files have no checksums: ``verify`` has nothing to check in them.

    Parameters
    ----------
    filename
        The archive's path (a ZIP file, a ``.zarr`` directory, an HDF5 file or a joblib file),
        an open binary file, or the fsspec URL of a zoblib archive (``s3://``, ``gs://``,
        ``az://``, ``memory://``, ``http(s)://``; ``file://`` is a local path). A remote ZIP
        archive is read with range requests: its directory and root record first, then only
        the members needed.
    mmap_mode
        ``None`` reads everything into ordinary numpy arrays. ``'r'``, ``'r+'`` or ``'c'``
        return uncompressed arrays as ``np.memmap`` over the archive's bytes (instant, shared
        between processes) and compressed arrays as :class:`~zoblib.LazyArray` (only the chunks
        a slice touches are read); ``'w+'`` is taken as ``'r+'`` (it would truncate the file),
        as joblib does. A file object that is not a real file (a ``BytesIO``, a pipe, a
        ``gzip.GzipFile``) cannot be mapped: the mode is ignored with a warning. A remote
        archive cannot be mapped either: ``'r'`` returns every array as a
        :class:`~zoblib.LazyArray` whose slices read only the chunks (or, uncompressed, the
        byte ranges) they touch.
    ensure_native_byte_order
        ``True`` converts arrays to the machine's byte order as they are read; ``False`` keeps
        the byte order they were dumped with; ``'auto'`` (the default, as joblib's) is ``True``
        without ``mmap_mode`` and ``False`` with it. ``True`` with ``mmap_mode`` is refused.
    verify
        With ``mmap_mode``: check every byte of the memory-mapped and lazy arrays against its
        checksum before returning (one read of their data, a few MiB of memory at a time). A
        ``np.memmap`` hands out pages that nothing checks as they are read, so without
        ``verify`` a damaged uncompressed array is only caught by :func:`~zoblib.verify` or a
        plain ``load``. Without ``mmap_mode`` everything is checked as it is read anyway.
    safe
        ``True`` runs nothing outside an allowlist (builtin containers and scalars, numpy,
        scipy.sparse, pandas, scikit-learn estimators and their internals, zoblib's own
        rebuild functions; see ``docs/safe-loading.md``): a skeleton naming anything else is
        refused before anything runs. ``False`` runs the full pickle, as joblib's ``load``
        does: only for files you trust. ``None`` (the default) is ``False`` unless the
        environment sets ``ZOBLIB_SAFE_LOAD=1`` or :func:`~zoblib.set_safe_load` was called.
    trusted
        With ``safe=True``: more globals to allow, as ``"module.QualName"`` strings or the
        classes and functions themselves (``trusted=[MyModel]``).
    storage_options
        For a URL: options of its fsspec file system (``endpoint_url``, ``key``, ``anon``...).
    progress
        ``True`` draws a bar of the bytes read on standard error, advancing as array data is
        read (with ``mmap_mode``: the skeleton, and what ``verify`` checks); a function is
        called with ``(bytes_done, bytes_total)`` instead. A file of ``joblib.dump``'s, read by
        joblib's format, counts its file size, done when the load ends. A zoblib extension.

    Returns
    -------
    object
        The object that was dumped.

    Raises
    ------
    FileNotFoundError
        (as :class:`~zoblib.ArchiveNotFoundError`) if nothing exists at ``filename``.
    ArchiveError
        If ``filename`` is not a zoblib archive, is damaged or truncated, or was written by a
        newer format version (:class:`~zoblib.ChecksumError`: bytes that do not match their
        checksum).
    UntrustedContentError
        With ``safe=True``, if the file needs a global outside the allowlist and ``trusted``;
        the message lists them and the call that would allow them.
    ValueError
        If ``trusted`` is given without safe loading.

    Examples
    --------
    >>> import os, tempfile, numpy as np, zoblib
    >>> path = os.path.join(tempfile.mkdtemp(), "big.pkl")
    >>> _ = zoblib.dump({"x": np.arange(1_000_000.0)}, path)
    >>> mapped = zoblib.load(path, mmap_mode="r")["x"]
    >>> type(mapped).__name__, float(mapped[999_999])
    ('memmap', 999999.0)
    >>> checked = zoblib.load(path, mmap_mode="r", verify=True)["x"]  # reads and checks the data once
    """
    mmap_mode = "r+" if mmap_mode == "w+" else mmap_mode
    if mmap_mode not in MMAP_MODES:
        raise ValueError(f"mmap_mode must be one of {(*MMAP_MODES, 'w+')}, got {mmap_mode!r}")
    if ensure_native_byte_order == "auto":
        ensure_native_byte_order = mmap_mode is None
    if ensure_native_byte_order not in (True, False):
        raise ValueError(
            f"ensure_native_byte_order must be True, False or 'auto', got {ensure_native_byte_order!r}"
        )
    if ensure_native_byte_order and mmap_mode is not None:
        raise ValueError(
            "Native byte ordering can only be enforced if 'mmap_mode' parameter "
            f"is set to None, but got 'mmap_mode={mmap_mode}' instead."
        )
    policy = _safe_load_policy(safe, trusted)
    _check_storage_options(filename, storage_options)
    source: str | IO[bytes] = os.fspath(filename) if isinstance(filename, (str, os.PathLike)) else filename
    if isinstance(source, str) and is_url(source):
        native = bool(ensure_native_byte_order)
        with byte_progress(progress, os.path.basename(source)) as counter:
            return _load_remote(
                source,
                storage_options,
                mmap_mode,
                native=native,
                verify=verify,
                policy=policy,
                progress=counter,
            )
    if isinstance(source, str):
        source = local_path(source)
    if mmap_mode is not None and not isinstance(source, str):
        mmap_mode = _file_object_mmap_mode(source, mmap_mode)
    with reading(_name_of(source)):
        found = identify(source)
        label = os.path.basename(_name_of(source))
        if found.kind == "joblib":
            # A file joblib.dump wrote. Safe loading passes its guarded unpickler here
            # (load_joblib_file's ``unpickler``).
            size = os.path.getsize(source) if isinstance(source, str) else None
            with byte_progress(progress, label, size):
                return load_joblib_file(
                    found.source,
                    compression=found.compression,
                    mmap_mode=mmap_mode,
                    native_byte_order=bool(ensure_native_byte_order),
                    name=_name_of(source),
                    **({} if policy is None else {"unpickler": safe_joblib_unpickler(policy)}),
                )
        container = open_reader(found.source)
        try:
            with byte_progress(progress, label) as counter:
                value = ArchiveReader(container).load(
                    mmap_mode,
                    native_byte_order=bool(ensure_native_byte_order),
                    verify=verify,
                    policy=policy,
                    progress=counter,
                )
        except BaseException:
            container.close()
            raise
        if mmap_mode is None:
            container.close()
        return value


def _load_remote(
    url: str,
    storage_options: Mapping[str, Any] | None,
    mmap_mode: str | None,
    *,
    native: bool,
    verify: bool,
    policy: Policy | None,
    progress: ByteCounter | None = None,
) -> Any:
    """Load the zoblib archive at ``url``; with ``mmap_mode``, its arrays stay remote and lazy."""
    if mmap_mode in ("r+", "c"):
        warnings.warn(
            f'mmap_mode "{mmap_mode}" cannot map the remote archive {url}: its arrays come back as '
            "read-only LazyArrays",
            stacklevel=3,
        )
    with reading(url):
        container = open_reader(url, storage_options)
        try:
            value = ArchiveReader(container).load(
                None if mmap_mode is None else "r",
                native_byte_order=native,
                verify=verify,
                policy=policy,
                progress=progress,
            )
        finally:
            if mmap_mode is None:
                container.close()
        return value


def _check_storage_options(filename: object, storage_options: Mapping[str, Any] | None) -> None:
    if storage_options is not None and not is_url(filename):
        raise ValueError(f"storage_options= only applies to URLs (s3://, memory://...), not {filename!r}")


def _safe_load_policy(safe: bool | None, trusted: Trusted) -> Policy | None:
    """The policy of a safe load, or ``None`` for joblib's full pickle."""
    trusted = tuple(trusted)
    if safe is None:
        safe = safe_load_default()
    if not safe:
        if trusted:
            raise ValueError("trusted= only applies to safe loading: pass safe=True with it")
        return None
    return Policy(trusted)


def _name_of(source: str | IO[bytes]) -> str:
    return source if isinstance(source, str) else str(getattr(source, "name", "<file object>"))


def _file_object_mmap_mode(source: IO[bytes], mmap_mode: str) -> str | None:
    """``mmap_mode`` for a file object: kept for a real file, else dropped with joblib's warning."""
    if isinstance(source, io.BytesIO):
        warnings.warn(
            "In memory persistence is not compatible with mmap_mode "
            f'"{mmap_mode}" flag passed. mmap_mode option will be ignored.',
            stacklevel=3,
        )
        return None
    if not is_raw_file(source):
        warnings.warn(
            f'"{source!r}" is not a raw file, mmap_mode "{mmap_mode}" flag will be ignored.', stacklevel=3
        )
        return None
    return mmap_mode
