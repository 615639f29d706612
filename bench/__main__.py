"""Run the benchmarks: every ``bench/bench_*.py`` module's ``main()``, or the ones named on the
command line (``python -m bench cancel``)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def run(names: list[str]) -> None:
    from bench.db import setup_django

    setup_django()  # before importing the modules: they import models at the top
    package = Path(__file__).resolve().parent
    modules = sorted(
        info.name for info in pkgutil.iter_modules([str(package)]) if info.name.startswith("bench_")
    )
    if names:
        modules = [m for m in modules if m in names or m.removeprefix("bench_") in names]
    for name in modules:
        print(f"== bench.{name}", flush=True)
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    run(sys.argv[1:])
