"""Lambdas, closures and functions of __main__ run in process workers (cloudpickle)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from zoblib.parallel import Parallel, delayed

PROCESS_BACKENDS = ["loky", "multiprocessing"]


@pytest.mark.parametrize("backend", PROCESS_BACKENDS)
def test_lambdas_closures_and_local_classes(backend: str) -> None:
    offset = 10

    def add_offset(x: int) -> int:
        return x + offset

    class Box:
        def __init__(self, value: int) -> None:
            self.value = value

    with Parallel(n_jobs=2, backend=backend) as parallel:
        assert parallel(delayed(lambda x: x * 3)(i) for i in range(4)) == [0, 3, 6, 9]
        assert parallel(delayed(add_offset)(i) for i in range(3)) == [10, 11, 12]
        boxes = parallel(delayed(Box)(i) for i in range(3))
    assert [box.value for box in boxes] == [0, 1, 2]


SCRIPT = """
    from zoblib.parallel import Parallel, delayed

    SCALE = 7

    def scaled(x):
        return x * SCALE

    class Point:
        def __init__(self, x):
            self.x = x

    if __name__ == "__main__":
        for backend in ("loky", "multiprocessing"):
            values = Parallel(n_jobs=2, backend=backend)(delayed(scaled)(i) for i in range(4))
            points = Parallel(n_jobs=2, backend=backend)(delayed(Point)(i) for i in range(2))
            print(backend, values, [type(p).__name__ for p in points])
"""


def test_functions_defined_in_main_run_in_workers(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "loky [0, 7, 14, 21] ['Point', 'Point']",
        "multiprocessing [0, 7, 14, 21] ['Point', 'Point']",
    ]
