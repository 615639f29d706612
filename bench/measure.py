"""Honest timing: every figure is measured next to its anchor in the same run, the two
alternated round by round (ABAB, then BABA, so neither always runs first or on a warm cache),
repeated, and printed as median with spread (min-max) and as a paired ratio (each round's
figure over the same round's anchor; the median and range of those ratios).

The machine is shared, so absolute times move with the load (the CPU time this process
spent is printed next to the wall time: waiting for a core does not count in it); the ratio to an anchor measured
in the same rounds is the figure to compare with a goal. The load average is printed with
every module's results.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Samples:
    label: str
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # this process's CPU time per run

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def ms(self) -> str:
        s = sorted(self.seconds)
        cpu = f", cpu {statistics.median(self.cpu) * 1000:.1f} ms" if self.cpu else ""
        return (
            f"median {self.median * 1000:.1f} ms "
            f"(min {s[0] * 1000:.1f}, max {s[-1] * 1000:.1f}, n={len(s)}{cpu})"
        )


def once(func: Callable[[], object]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def alternate(cases: dict[str, Callable[[], object]], *, repeat: int, warmup: int = 1):
    """Run every case ``repeat`` times, round by round, rotating which runs first. Returns
    ``{label: Samples}``. ``warmup`` untimed rounds first (caches, connections, imports).
    A case returning a float reports its own measured seconds (its setup/cleanup excluded)."""
    labels = list(cases)
    for _ in range(warmup):
        for label in labels:
            cases[label]()
    results = {label: Samples(label) for label in labels}
    for round_number in range(repeat):
        shift = round_number % len(labels)
        order = labels[shift:] + labels[:shift]
        if round_number % 2:
            order.reverse()
        for label in order:
            cpu = time.process_time()
            started = time.perf_counter()
            timed = cases[label]()
            elapsed = time.perf_counter() - started
            # A case that times itself (setup or cleanup around the measured part) returns
            # its seconds as a float.
            results[label].seconds.append(timed if isinstance(timed, float) else elapsed)
            results[label].cpu.append(time.process_time() - cpu)
    return results


def ratio_line(figure: Samples, anchor: Samples, *, goal: str = "") -> str:
    """``figure / anchor`` per round (paired), median and range."""
    ratios = sorted(f / a for f, a in zip(figure.seconds, anchor.seconds, strict=True))
    text = (
        f"ratio {statistics.median(ratios):.2f}x (range {ratios[0]:.2f}-{ratios[-1]:.2f}) "
        f"to {anchor.label} ({anchor.median * 1000:.1f} ms)"
    )
    return f"{text}{'; goal ' + goal if goal else ''}"


def print_figure(
    figure: Samples, anchor: Samples | None = None, *, goal: str = "", ratio_goal: str = ""
) -> None:
    """``label: median (min, max, n); goal`` and, with an anchor, the paired ratio line."""
    line = f"  {figure.label}: {figure.ms()}{'; goal ' + goal if goal else ''}"
    if anchor is not None:
        line += f"\n      {ratio_line(figure, anchor, goal=ratio_goal)}"
    print(line, flush=True)


def load_line() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (5 min {five:.2f}) on {os.cpu_count()} CPUs"


class StatementCounter:
    """Counts every statement sent through Django's cursor, whatever the request cycle does to
    ``connection.queries`` (the test client's ``request_started`` resets the query log, so a
    ``CaptureQueriesContext`` around a request reads 0). BEGIN/COMMIT are not counted;
    SAVEPOINT/RELEASE are. Statements sent together in one round trip
    (``servicing.statements.run_together`` on PostgreSQL) count one each in ``count``;
    ``round_trips`` counts the executes."""

    def __init__(self):
        self.count = 0
        self.round_trips = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += sql.count(";\n") + 1
        self.round_trips += 1
        return execute(sql, params, many, context)


def count_statements(func: Callable[[], object]) -> tuple[int, object]:
    statements, _, result = count_statements_and_round_trips(func)
    return statements, result


def count_statements_and_round_trips(func: Callable[[], object]) -> tuple[int, int, object]:
    from django.db import connection

    counter = StatementCounter()
    with connection.execute_wrapper(counter):
        result = func()
    return counter.count, counter.round_trips, result


def backend_cpu_seconds(connection) -> float | None:
    """CPU seconds the PostgreSQL backend serving ``connection`` has used so far (user +
    system, from ``/proc``: the server on this machine), or None where it cannot be read (a
    remote server). The dispatcher's figure adds it to the worker's own CPU: the two share
    the cores, so together they bound the rate."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
