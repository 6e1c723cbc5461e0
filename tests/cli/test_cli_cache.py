"""``zoblib cache``: a real Memory cache listed, described, pruned and cleared."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from cli_helpers import Run

import zoblib


def entries_on_disk(location: Path) -> int:
    return len(list((location / "zoblib").rglob("metadata.json")))


def test_ls(run: Run, cache_location: Path) -> None:
    result = run("cache", "ls", cache_location)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["FUNCTION", "ENTRIES", "HITS", "SIZE", "LAST", "ACCESS"]
    assert [row.split()[0].rsplit("/", 1)[1] for row in rows] == ["add", "square"]
    document = json.loads(run("cache", "ls", "--json", cache_location).stdout)
    functions = {f["function"].rsplit("/", 1)[1]: f for f in document["functions"]}
    assert functions["square"]["entries"] == 3 and functions["add"]["entries"] == 2
    # the sizes are what Memory lists: each entry's archive and metadata
    listed = {f.func_id: f for f in zoblib.Memory(cache_location, verbose=0).list_functions()}
    for info in document["functions"]:
        assert info["size"] == listed[info["function"]].size > 0
        assert abs(info["last_access"] - time.time()) < 600


def test_hits_of_a_function_called_1_plus_3_times(run: Run, tmp_path: Path) -> None:
    script = tmp_path / "hits.py"
    script.write_text(
        "import sys, zoblib\n"
        "memory = zoblib.Memory(sys.argv[1], verbose=0)\n"
        "half = memory.cache(lambda x: x / 2)\n"
        "for _ in range(int(sys.argv[2])):\n"
        "    half(8)\n"
        "if sys.argv[2] == '1':\n"
        "    half(9)\n"  # another entry, computed by the first process and never hit
    )
    location = tmp_path / "cache"
    for calls in (1, 3):  # two processes: the first computes, the second hits three times
        subprocess.run([sys.executable, str(script), str(location), str(calls)], check=True, timeout=120)
    listed = json.loads(run("cache", "ls", "--json", location).stdout)
    assert [f["hits"] for f in listed["functions"]] == [3]
    described = json.loads(run("cache", "info", "--json", location).stdout)
    assert sorted(i["hits"] for i in described["items"]) == [0, 3]
    header, *rows = run("cache", "info", location).stdout.splitlines()[1:]
    column = re.split(r"\s{2,}", header).index("HITS")  # cells are 2 or more spaces apart
    assert sorted(int(re.split(r"\s{2,}", row)[column]) for row in rows) == [0, 3]


def test_info(run: Run, cache_location: Path) -> None:
    result = run("cache", "info", cache_location)
    assert result.returncode == 0, result.stderr
    assert f"{cache_location}: 2 functions, 5 entries" in result.stdout
    assert "n=200000" in result.stdout and "a=2, b=3" in result.stdout
    document = json.loads(run("cache", "info", "--json", cache_location).stdout)
    assert document["entries"] == 5 and document["functions"] == 2
    assert document["size"] == sum(item["size"] for item in document["items"])
    item = next(i for i in document["items"] if i["input_args"].get("n") == "200000")
    assert item["size"] > 1_600_000  # 200,000 int64 squares
    assert item["duration"] >= 0 and item["computed_at"] <= time.time()
    assert os.path.isdir(item["location"])
    square = item["function"]
    only = json.loads(run("cache", "info", "--json", cache_location, square).stdout)
    assert only["entries"] == 3


def test_prune_by_size_dry_run_then_real(run: Run, cache_location: Path) -> None:
    dry = run("cache", "prune", cache_location, "--max-size", "100K", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True and planned["freed"] > 1_600_000
    assert entries_on_disk(cache_location) == 5  # nothing removed
    real = json.loads(run("cache", "prune", cache_location, "--max-size", "100K", "--json").stdout)
    assert real["dry_run"] is False
    assert sorted(i["args_id"] for i in real["removed"]) == sorted(i["args_id"] for i in planned["removed"])
    assert entries_on_disk(cache_location) == 5 - len(real["removed"])
    remaining = zoblib.Memory(cache_location, verbose=0).list_entries()
    assert sum(e.size for e in remaining) <= 100 * 1024


def test_prune_by_age(run: Run, cache_location: Path) -> None:
    old = time.time() - 10 * 86400
    metadata = sorted((cache_location / "zoblib").rglob("metadata.json"))
    for path in metadata[:2]:  # not accessed for ten days
        os.utime(path, (old, old))
    result = run("cache", "prune", cache_location, "--older-than", "7d")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("removed 2 entries")
    assert entries_on_disk(cache_location) == 3
    assert not any(path.exists() for path in metadata[:2])


def test_prune_needs_a_limit(run: Run, cache_location: Path) -> None:
    result = run("cache", "prune", cache_location)
    assert result.returncode == 2 and "--max-size" in result.stderr
    bad = run("cache", "prune", cache_location, "--older-than", "soon")
    assert bad.returncode == 2 and "soon" in bad.stderr


def test_clear_asks_first(run: Run, cache_location: Path) -> None:
    refused = run("cache", "clear", cache_location, input="n\n")
    assert refused.returncode == 1 and "Aborted" in refused.stderr
    assert entries_on_disk(cache_location) == 5
    accepted = run("cache", "clear", cache_location, input="y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert "removed 5 entries" in accepted.stdout
    assert entries_on_disk(cache_location) == 0


def test_clear_yes_json(run: Run, cache_location: Path) -> None:
    result = run("cache", "clear", "--yes", "--json", cache_location, script=True)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["removed"] == 5 and document["freed"] > 0
    assert entries_on_disk(cache_location) == 0


def test_no_cache_there(run: Run, tmp_path: Path, cache_location: Path) -> None:
    result = run("cache", "ls", tmp_path / "elsewhere")
    assert result.returncode == 1 and "no zoblib cache" in result.stderr
    assert not (tmp_path / "elsewhere").exists()  # looking created nothing
    store = run("cache", "ls", cache_location / "zoblib")
    assert (
        store.returncode == 1
        and f"pass the folder given to Memory(), {str(cache_location)!r}" in store.stderr
    )
