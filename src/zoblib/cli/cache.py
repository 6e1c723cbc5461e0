"""``zoblib cache ls|info|prune|clear LOCATION``: what a ``Memory(LOCATION)`` cache holds.

LOCATION is what was given to ``Memory(location)``; the entries live under
``LOCATION/zoblib/``. Everything goes through :class:`zoblib.Memory`'s own listing and
eviction (least recently used first), so the command and the library agree. ``Memory``
records each entry's size, last access, number of hits since it was (last) computed,
computation time and duration. The local store counts hits; a store that does not (the fsspec
store) lists them as None (``-`` in tables). ``prune`` and ``clear`` use the local store's
index (its totals, its least recently used order; ``--older-than`` reads every entry's mtimes,
which the index cannot vouch for); ``ls`` and ``info`` read each entry's files, one at a time,
for exact hit counts.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Sequence
from typing import Any

import click

from zoblib.cli.tables import echo_json, fail, format_age, format_bytes, render_table
from zoblib.errors import ZoblibError
from zoblib.memory import Memory
from zoblib.memory.catalog import CacheEntryInfo, entry_info, function_summary, iter_entry_stats
from zoblib.memory.eviction import CacheLimits, enforce_limits, parse_bytes
from zoblib.memory.store import EntryStat

STORE_FOLDER = "zoblib"
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> datetime.timedelta:
    """``'7d'``, ``'12h'``, ``'30m'``, ``'45s'``, ``'2w'`` as a duration.

    Examples
    --------
    >>> parse_age("7d"), parse_age("90s")
    (datetime.timedelta(days=7), datetime.timedelta(seconds=90))
    """
    match = _AGE.match(text)
    if match is None:
        raise click.BadParameter(f"{text!r}: use a number and s, m, h, d or w (such as 7d)")
    return datetime.timedelta(seconds=float(match.group(1)) * _AGE_UNITS[match.group(2).lower()])


def open_cache(location: str) -> Memory:
    """The ``Memory`` of an existing cache at ``location`` (exit 1 if there is none)."""
    if not os.path.isdir(os.path.join(location, STORE_FOLDER)):
        hint = ""
        if os.path.basename(os.path.normpath(location)) == STORE_FOLDER:
            hint = f"; pass the folder given to Memory(), {os.path.dirname(os.path.normpath(location))!r}"
        fail(f"no zoblib cache at {location!r} (no {STORE_FOLDER}/ folder in it){hint}")
        raise SystemExit(1)
    return Memory(location, verbose=0)


#: The ``--json`` keys (docs/cli.md) of a cached function, of an entry, and of a removed entry;
#: each is the record's attribute of that name, ``function`` its ``func_id``.
FUNCTION_KEYS = ("function", "entries", "size", "last_access")
ENTRY_KEYS = (
    "function",
    "args_id",
    "location",
    "size",
    "last_access",
    "computed_at",
    "duration",
    "input_args",
)
REMOVED_KEYS = ("function", "args_id", "size", "last_access")
#: Listed after those keys by ``ls`` and ``info``: the store's count, not a listing record's.
HITS_KEY = "hits"


def record_json(record: object, keys: Sequence[str]) -> dict[str, Any]:
    """``keys`` of a listing record (a function, an entry) as ``--json`` prints them.

    Examples
    --------
    >>> from zoblib.memory.catalog import CachedFunctionInfo
    >>> record_json(CachedFunctionInfo("m.f", entries=2, size=10, last_access=None), FUNCTION_KEYS)
    {'function': 'm.f', 'entries': 2, 'size': 10, 'last_access': None}
    """
    document = {key: getattr(record, "func_id" if key == "function" else key) for key in keys}
    if "input_args" in document:
        document["input_args"] = dict(document["input_args"])
    return document


@click.group()
def cache() -> None:
    """Look after a Memory cache: list, describe, prune or clear it."""


@cache.command("ls")
@click.argument("location", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (keys in docs/cli.md).")
def list_functions(location: str, as_json: bool) -> None:
    """List the cached functions of the cache at LOCATION: entries, hits, size, last access."""
    store = open_cache(location).store_backend
    assert store is not None  # a local folder always has a store
    # The store's listing, as Memory.list_functions reads it (one entry at a time), with the
    # exact hit counts of the entries' files (the index only holds lower bounds of those).
    functions = [function_summary(func_id, store.iter_entries(func_id)) for func_id in store.list_functions()]
    if as_json:
        records = [{**record_json(f, FUNCTION_KEYS), HITS_KEY: hits} for f, hits in functions]
        echo_json({"location": location, "functions": records})
        return
    rows = [
        [f.func_id, str(f.entries), _count(hits), format_bytes(f.size), format_age(f.last_access)]
        for f, hits in functions
    ]
    click.echo(render_table(["FUNCTION", "ENTRIES", "HITS", "SIZE", "LAST ACCESS"], rows, right=[1, 2, 3]))


def _count(hits: int | None) -> str:
    return "-" if hits is None else str(hits)


@cache.command("info")
@click.argument("location", type=click.Path())
@click.argument("function", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (keys in docs/cli.md).")
def info(location: str, function: str | None, as_json: bool) -> None:
    """Describe every entry of the cache at LOCATION (or of one FUNCTION id), oldest access first."""
    memory = open_cache(location)
    store = memory.store_backend
    assert store is not None  # a local folder always has a store
    # What Memory.list_entries(function) lists, kept beside the store's hit counts.
    stats = iter_entry_stats(store) if function is None else store.iter_entries(function)
    listed = [(entry_info(store, s), s.hits) for s in sorted(stats, key=lambda s: s.last_access)]
    entries = [e for e, _ in listed]
    total = sum(e.size for e in entries)
    if as_json:
        echo_json(
            {
                "location": location,
                "store": memory.store_backend.location if memory.store_backend else None,
                "functions": len({e.func_id for e in entries}),
                "entries": len(entries),
                "size": total,
                "items": [{**record_json(e, ENTRY_KEYS), HITS_KEY: hits} for e, hits in listed],
            }
        )
        return
    functions = len({e.func_id for e in entries})
    click.echo(f"{location}: {functions} functions, {len(entries)} entries, {format_bytes(total)}")
    rows = [
        [
            e.func_id,
            e.args_id[:12],
            format_bytes(e.size),
            format_age(e.computed_at),
            "-" if e.duration is None else f"{e.duration:.3f}s",
            format_age(e.last_access),
            _count(hits),
            _arguments(e),
        ]
        for e, hits in listed
    ]
    if rows:
        headers = ["FUNCTION", "ENTRY", "SIZE", "COMPUTED", "TOOK", "LAST ACCESS", "HITS", "ARGUMENTS"]
        click.echo(render_table(headers, rows, right=[2, 4, 6]))


def _arguments(entry: CacheEntryInfo, width: int = 40) -> str:
    text = ", ".join(f"{k}={v}" for k, v in entry.input_args.items())
    return text if len(text) <= width else text[: width - 3] + "..."


@cache.command("prune")
@click.argument("location", type=click.Path())
@click.option("--max-size", metavar="SIZE", help="Keep at most this many bytes (10M, 1G, ...).")
@click.option("--older-than", metavar="AGE", help="Remove entries not accessed for longer (7d, 12h, ...).")
@click.option("--max-entries", type=click.IntRange(min=0), help="Keep at most this many entries.")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (keys in docs/cli.md).")
def prune(
    location: str,
    max_size: str | None,
    older_than: str | None,
    max_entries: int | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Remove entries, least recently used first, until the cache fits the limits."""
    if max_size is None and older_than is None and max_entries is None:
        raise click.UsageError("give at least one of --max-size, --older-than, --max-entries")
    try:
        limits = CacheLimits.parse(
            parse_bytes(max_size), max_entries, None if older_than is None else parse_age(older_than)
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--max-size") from None
    memory = open_cache(location)
    removed: Sequence[EntryStat | CacheEntryInfo]
    if dry_run:
        assert memory.store_backend is not None  # a local folder always has a store
        # What reduce_size would remove (through the index, as it does), nothing deleted.
        removed = enforce_limits(memory.store_backend, limits, dry_run=True).removed
    else:
        try:
            removed = memory.reduce_size(limits.bytes_limit, limits.items_limit, limits.age_limit)
        except (ZoblibError, OSError) as exc:
            fail(str(exc))
            raise SystemExit(1) from None
    freed = sum(entry.size for entry in removed)
    if as_json:
        items = [record_json(entry, REMOVED_KEYS) for entry in removed]
        echo_json({"location": location, "dry_run": dry_run, "removed": items, "freed": freed})
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {len(removed)} entries ({format_bytes(freed)})")
    if removed:
        rows = [[e.func_id, e.args_id[:12], format_bytes(e.size), format_age(e.last_access)] for e in removed]
        click.echo(render_table(["FUNCTION", "ENTRY", "SIZE", "LAST ACCESS"], rows, right=[2]))


@cache.command("clear")
@click.argument("location", type=click.Path())
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (keys in docs/cli.md).")
def clear(location: str, yes: bool, as_json: bool) -> None:
    """Delete every entry of the cache at LOCATION (asks first, unless --yes)."""
    memory = open_cache(location)
    assert memory.store_backend is not None  # a local folder always has a store
    # The index's totals when there is one (after it was reconciled), else a scan.
    totals = memory.store_backend.totals()
    if totals is None:
        stats = list(iter_entry_stats(memory.store_backend))
        totals = (len(stats), sum(e.size for e in stats))
    count, freed = totals
    if not yes:
        click.confirm(
            f"delete all {count} entries ({format_bytes(freed)}) of {location!r}?",
            abort=True,
            err=True,
        )
    try:
        memory.clear(warn=False)
    except (ZoblibError, OSError) as exc:
        fail(str(exc))
        raise SystemExit(1) from None
    if as_json:
        echo_json({"location": location, "removed": count, "freed": freed})
    else:
        click.echo(f"removed {count} entries ({format_bytes(freed)})")
