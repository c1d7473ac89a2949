"""The benchmark harness: a registry of parts, interleaved timing, result rows, the machine.

A *part* is a function that measures something and returns a PartResult: rows of
{benchmark, case, candidate, value, unit, ratio_vs_baseline, baseline} plus the targets it checks.
Register one with `@part(...)` in a module under benchmarks/parts/ and list that module in
benchmarks/parts/__init__.py; `run.py` runs it and writes benchmarks/results/<name>.json, and
`render_docs.py` turns every results file into docs/performance.md.

These machines are shared and noisy, so no figure stands alone: each candidate is timed in the same
run as its baseline, interleaved round by round (the order shuffled each round, seeded), and the ratio is
the median over rounds of the per-round ratios.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
# The results docs/performance.md was last generated from (committed): a part not rerun on this
# machine (a GPU part where no GPU is lent) keeps its published figures when the page is regenerated.
PUBLISHED_DIR = BENCH_DIR / "published"
RESULTS_FORMAT = 1


@dataclass
class Row:
    benchmark: str  # a table: "clip loading (5 frames, 224 px)"
    case: str  # a line of it: "bigbuckbunny.mp4 (H.264 1280x720, 132 frames)"
    candidate: str  # a column: "varec", "read all", ...
    value: float
    unit: str  # "clips/s", "s", ...
    ratio_vs_baseline: float | None  # value relative to the baseline's, same run (see Part docs)
    baseline: str | None  # the candidate the ratio is against; None for the baseline itself
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Target:
    text: str  # "varec >= 4x keras-video-generators"
    measured: str  # "5.1x" or "n/a (skipped: ...)"
    met: bool | None  # None: not measured in this run


@dataclass
class PartResult:
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # markdown lines shown under the part's tables
    case_columns: list[str] = field(default_factory=list)  # row.details keys shown beside each case
    machine: dict[str, Any] = field(default_factory=dict)  # what the part learnt of the machine (a GPU...)


class Skipped(Exception):
    """A part that cannot run on this machine (no GPU, say): run.py keeps its earlier results."""


@dataclass
class Context:
    repeats: int
    quick: bool
    work_dir: Path  # generated inputs (clips, models), kept between runs
    options: dict[str, Any]
    log: Callable[[str], None]


@dataclass
class Part:
    name: str
    title: str
    order: int
    description: str  # markdown: what is measured, how, and what the ratio means
    run: Callable[[Context], PartResult]


PARTS: dict[str, Part] = {}


def part(name: str, *, title: str, order: int, description: str):
    """Register a benchmark part: `@part("clips", title=..., order=1, description=...)`."""

    def register(function: Callable[[Context], PartResult]):
        PARTS[name] = Part(name, title, order, description.strip(), function)
        return function

    return register


# ---------------------------------------------------------------------------- timing


def interleaved(
    candidates: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1, seed: int = 0
) -> dict[str, list[float]]:
    """Seconds per call of each candidate, `repeats` rounds, every candidate once per round.

    The order is shuffled every round (seeded: a rerun shuffles alike), so that no candidate always
    runs after the same one and inherits its after-effects (memory it freed, caches it filled) in every
    round. (Rotating one fixed order, as this did before, leaves every candidate after the same
    predecessor within a round: in the clips part, varec always ran right after "read all" had freed
    its hundreds of MB of frames.) A candidate that returns a float reports its own time (e.g. a
    worker process that timed itself).
    """
    import random

    names = list(candidates)
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    shuffler = random.Random(seed)
    for _ in range(repeats):
        order = list(names)
        shuffler.shuffle(order)
        for name in order:
            start = time.perf_counter()
            reported = candidates[name]()
            elapsed = time.perf_counter() - start
            times[name].append(float(reported) if isinstance(reported, float) else elapsed)
    return times


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of numerator[i] / denominator[i] (both timed in the same round)."""
    return median([a / b for a, b in zip(numerator, denominator) if b > 0])


def spread(values: list[float]) -> dict[str, float]:
    return {"median_s": median(values), "min_s": min(values), "max_s": max(values), "repeats": len(values)}


def throughput_rows(
    benchmark: str, case: str, times: dict[str, list[float]], baseline: str, *, items: int = 1, unit: str = "clips/s"
) -> list[Row]:
    """Rows for candidates timed by `interleaved`: value = items per second (median time);
    ratio = how many times faster than `baseline` (median of per-round time ratios)."""
    rows = []
    for name, values in times.items():
        ratio = 1.0 if name == baseline else paired_ratio(times[baseline], values)
        other = None if name == baseline else baseline
        rows.append(Row(benchmark, case, name, items / median(values), unit, ratio, other, spread(values)))
    return rows


def duration_rows(benchmark: str, case: str, times: dict[str, list[float]], baseline: str) -> list[Row]:
    """Rows for candidates timed by `interleaved`: value = median seconds;
    ratio = candidate time / baseline time (median of per-round ratios; lower is faster)."""
    return [
        Row(benchmark, case, name, median(values), "s",
            1.0 if name == baseline else paired_ratio(values, times[baseline]),
            None if name == baseline else baseline, spread(values))
        for name, values in times.items()
    ]


# ---------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def machine_info() -> dict[str, Any]:
    import cv2

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "memory_gib": _memory_gib(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow") or _version("tensorflow-cpu"),
        "keras": _version("keras"),
        "opencv": cv2.__version__,
        "numpy": _version("numpy"),
        # VAREC_BENCH_COMMIT names the commit where git cannot: a copy of the checkout on another
        # machine (a lent GPU's) may carry no .git, or a stale one.
        "varec_commit": os.environ.get("VAREC_BENCH_COMMIT")
        or (_git("rev-parse", "--short", "HEAD") or "?") + ("+dirty" if dirty else ""),
    }


# ---------------------------------------------------------------------------- results


def write_result(part_: Part, result: PartResult, *, started: float, settings: dict[str, Any], machine: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    machine = dict(machine, **result.machine, load_average_after=list(os.getloadavg()) if hasattr(os, "getloadavg") else None)
    data = {
        "format": RESULTS_FORMAT,
        "part": part_.name,
        "title": part_.title,
        "order": part_.order,
        "description": part_.description,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "settings": settings,
        "machine": machine,
        "rows": [asdict(row) for row in result.rows],
        "targets": [asdict(target) for target in result.targets],
        "notes": result.notes,
        "case_columns": result.case_columns,
    }
    path = RESULTS_DIR / f"{part_.name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    os.replace(tmp, path)
    return path


def load_results(directory: Path = RESULTS_DIR) -> list[dict[str, Any]]:
    results = []
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and data.get("format") == RESULTS_FORMAT and "rows" in data:
            results.append(data)
    return sorted(results, key=lambda d: (d.get("order", 99), d["part"]))


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for subprocesses that import varec from this checkout, quietly (plus `extra`)."""
    env = dict(os.environ)
    env.update(extra or {})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def run_python(
    args: list[str], *, python: str = sys.executable, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`python ARGS` from the repository root, this checkout's varec first on the path (`env`: extra variables)."""
    return subprocess.run(
        [python, *args], cwd=REPO, env=python_env(env), capture_output=True, text=True, timeout=timeout
    )


def save_random_model(
    path: Path, backbone: str, frames: int, size: int, classes: int, *, units: int = 256,
    clip_seconds: float | None = None,
) -> Path:
    """A varec model file of random weights (speed is what the benchmarks measure), GRU head."""
    from varec_cli.models.architecture import build_model
    from varec_cli.models.backbones import backbone_spec
    from varec_cli.models.modelfile import ModelMetadata, save_model

    labels = [f"action_{i:03d}" for i in range(classes)]
    model = build_model(len(labels), backbone=backbone, rnn="gru", frames=frames, size=size, units=units)
    spec = backbone_spec(backbone)
    metadata = ModelMetadata(
        labels=labels, frames=frames, size=(size, size), backbone=backbone, preprocessing=spec.preprocessing,
        rnn="gru", feature_dim=spec.feature_dim, clip_seconds=clip_seconds,
        provenance={"note": "random weights, built by benchmarks/ for timing"},
    )
    return save_model(model, path, metadata)
