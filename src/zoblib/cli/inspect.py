"""``zoblib inspect PATH``: an archive's arrays by name, its stored nodes and who wrote it."""

from __future__ import annotations

from typing import Any

import click

from zoblib.cli.archive_info import ArchiveInfo, ArrayInfo, describe_archive
from zoblib.cli.tables import echo_json, fail, format_bytes, format_ratio, format_shape, render_table
from zoblib.errors import ZoblibError


@click.command()
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (keys in docs/cli.md).")
def inspect(path: str, as_json: bool) -> None:
    """Show the arrays of the archive at PATH (ZIP, .zarr or .h5) without unpickling it."""
    try:
        info = describe_archive(path)
    except (ZoblibError, OSError) as exc:
        fail(str(exc))
        raise SystemExit(1) from None
    if as_json:
        echo_json(info.to_json())
    else:
        click.echo(render_archive(info))


def codec_label(config: dict[str, Any] | None) -> str:
    """A codec configuration in a few characters: ``'zstd:3'``, ``'blosc:lz4:5'``, ``'none'``.

    Examples
    --------
    >>> codec_label({"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1}), codec_label(None)
    ('blosc:lz4:5', 'none')
    """
    if config is None:
        return "none"
    parts = [str(config.get("id", "?"))]
    parts += [
        str(config[key]) for key in ("cname", "level", "clevel", "preset") if config.get(key) is not None
    ]
    return ":".join(parts)


def render_archive(info: ArchiveInfo) -> str:
    """The text ``zoblib inspect`` prints for people."""
    versions = info.versions
    written = [f"zoblib {versions['zoblib_version']} (format {versions['format_version']})"]
    written += [
        f"{label} {versions[key]}"
        for key, label in (("python_version", "python"), ("numpy_version", "numpy"), ("zarr_version", "zarr"))
        if versions.get(key) is not None
    ]
    if versions.get("pickle_protocol") is not None:
        written.append(f"pickle protocol {versions['pickle_protocol']} ({versions.get('pickler')})")
    alone = sum(1 for a in info.arrays if not a.packed)
    packs = [n for n in info.nodes if n.kind == "pack"]
    packed = len(info.arrays) - alone
    inline = "an unknown number of" if info.inline_arrays is None else str(info.inline_arrays)
    lines = [
        f"{info.path}: zoblib archive ({info.container}, {format_bytes(info.file_nbytes)})",
        "written by " + ", ".join(written),
        f"{len(info.arrays)} stored arrays ({alone} alone, {packed} in {len(packs)} "
        f"{'pack' if len(packs) == 1 else 'packs'}); "
        f"{inline} inline in the skeleton ({format_bytes(info.skeleton.nbytes)})",
    ]
    if info.arrays:
        lines += ["", _array_tree(info.arrays)]
    lines += ["", _node_table(info)]
    return "\n".join(lines)


def _array_tree(arrays: tuple[ArrayInfo, ...]) -> str:
    rows: list[list[str]] = []
    groups: list[str] = []  # the group components the previous row sits in
    for array in arrays:
        *parents, leaf = array.name.split("/")
        common = 0
        while common < min(len(groups), len(parents)) and groups[common] == parents[common]:
            common += 1
        for depth in range(common, len(parents)):
            rows.append(["  " * depth + parents[depth] + "/", *[""] * 8])
        groups = parents
        rows.append(
            [
                "  " * len(parents) + leaf,
                format_shape(array.shape),
                array.dtype,
                codec_label(array.codec),
                format_shape(array.chunk_shape),
                format_bytes(array.stored_nbytes),
                format_bytes(array.nbytes),
                format_ratio(array.nbytes, array.stored_nbytes),
                array.node,
            ]
        )
    headers = ["NAME", "SHAPE", "DTYPE", "CODEC", "CHUNKS", "STORED", "LOGICAL", "RATIO", "NODE"]
    return render_table(headers, rows, right=[5, 6, 7])


def _node_table(info: ArchiveInfo) -> str:
    rows = [
        [
            node.path,
            node.kind if node.kind != "pack" else f"pack of {len(node.members)}",
            format_shape(node.shape),
            node.dtype,
            codec_label(node.codec),
            str(node.chunks),
            format_bytes(node.stored_nbytes),
            format_bytes(node.nbytes),
            format_ratio(node.nbytes, node.stored_nbytes),
        ]
        for node in info.nodes
    ]
    headers = ["NODE", "KIND", "SHAPE", "DTYPE", "CODEC", "CHUNKS", "STORED", "LOGICAL", "RATIO"]
    return render_table(headers, rows, right=[5, 6, 7, 8])
