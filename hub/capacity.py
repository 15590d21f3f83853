"""How long a class takes to get its labs, and how many labs a machine holds.

Plain Python (no JupyterHub import): the capacity planner
(``classroom loadtest class-start`` and ``classroom loadtest replay``) and the
class-start benchmark use it.

The model is the start queue's (:mod:`hub.startqueue`): students ask at
``window × i / N`` (all at once for a window of 0); at most ``parallel`` labs
start at once, first come first served; the labs starting share the machine's
``cores`` equally (a start is one busy process, so one start runs at most at
one core's speed), each needing ``cpu_per_lab`` CPU seconds (the lab's own
and the hub's share, measured by ``make bench``) plus ``latency_s`` of waiting
that uses no CPU (process start, the hub noticing the lab answers). On a
machine busy with other work, ``cpu_share`` is the part of the cores the
classroom gets (the class-start benchmark's machine, shared with two other
test runs, gave it about half). A simulation, deterministic, in steps of the
next event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Measured on the 2-core development machine (benchmarks/RESULTS.md, "class start"):
# CPU seconds per lab start, the lab's own and the hub's share of it, and the
# wall time a start waits without using CPU.
MEASURED_CPU_PER_LAB = 1.5
MEASURED_LATENCY_S = 0.5
# Resident memory of one idle lab (server, no kernel) and of one kernel after a
# lesson's imports (the three SDKs and the widgets), MiB (benchmarks/RESULTS.md).
MEASURED_IDLE_LAB_MIB = 100.0
MEASURED_KERNEL_MIB = 150.0


@dataclass(frozen=True)
class ClassStart:
    """The prediction for one class."""

    students: int
    parallel: int
    cores: int
    cpu_per_lab: float
    ready_s: tuple[float, ...]  # each student's wait from asking to a ready lab, in order

    @property
    def all_ready_s(self) -> float:
        return max(self.ready_s, default=0.0)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.ready_s)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def predict_class_start(
    students: int,
    *,
    cores: int,
    parallel: int | None = None,
    cpu_per_lab: float = MEASURED_CPU_PER_LAB,
    latency_s: float = MEASURED_LATENCY_S,
    window_s: float = 0.0,
    cpu_share: float = 1.0,
) -> ClassStart:
    """Each student's wait for a ready lab when ``students`` ask within ``window_s``."""
    if students < 0 or cores < 1 or cpu_per_lab <= 0 or not 0 < cpu_share <= 1:
        raise ValueError("students >= 0, cores >= 1, cpu_per_lab > 0 and 0 < cpu_share <= 1")
    parallel = cores if parallel is None else parallel
    if parallel < 1:
        raise ValueError("parallel must be at least 1")
    arrivals = [window_s * i / students if students else 0.0 for i in range(students)]
    ready = [0.0] * students
    # Each starting lab: [index, CPU seconds left, latency left]
    running: list[list[float]] = []
    next_arrival = 0
    line: list[int] = []
    now = 0.0
    while next_arrival < students or line or running:
        while next_arrival < students and arrivals[next_arrival] <= now + 1e-12:
            line.append(next_arrival)
            next_arrival += 1
        while line and len(running) < parallel:
            running.append([float(line.pop(0)), cpu_per_lab, latency_s])
        share = min(1.0, cores * cpu_share / len(running)) if running else 0.0
        # The next event: an arrival, a start's CPU done, or its latency done after it.
        steps = [arrivals[next_arrival] - now] if next_arrival < students else []
        for _, cpu, wait in running:
            steps.append(cpu / share if cpu > 0 else wait)
        step = max(min(steps), 0.0) if steps else 0.0
        now += step
        for lab in running:
            if lab[1] > 0:
                lab[1] = max(0.0, lab[1] - step * share)
            else:
                lab[2] = max(0.0, lab[2] - step)
        for lab in [r for r in running if r[1] <= 1e-9 and r[2] <= 1e-9]:
            running.remove(lab)
            index = int(lab[0])
            ready[index] = now - arrivals[index]
    return ClassStart(students, parallel, cores, cpu_per_lab, tuple(ready))


def labs_in_memory(memory_gib: float, *, reserved_gib: float = 2.0,
                   kernels_per_lab: float = 1.0) -> int:
    """Labs (each with its kernels) that fit in ``memory_gib``, keeping ``reserved_gib`` free."""
    per_lab = MEASURED_IDLE_LAB_MIB + kernels_per_lab * MEASURED_KERNEL_MIB
    return max(0, int((memory_gib - reserved_gib) * 1024 // per_lab))
