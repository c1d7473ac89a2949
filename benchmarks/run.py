"""Run varec's benchmarks and (optionally) regenerate docs/performance.md from the results.

    python benchmarks/run.py all --write-docs        # every part, then the docs
    python benchmarks/run.py clips predict           # some parts
    python benchmarks/run.py all --quick             # fewer cases and rounds, to try things out
    python benchmarks/run.py setup-kvg               # create the keras-video-generators side venv
    python benchmarks/run.py list

Results go to benchmarks/results/<part>.json (git-ignored); inputs the benchmarks generate (clips,
models) are kept in benchmarks/results/work/ between runs. Run it with the Python of the virtual
environment varec is installed in: the measured code is this checkout's (it is put first on the
path, in this process and in the subprocesses it starts).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(1, str(BENCH_DIR.parent))  # this checkout's varec_cli, not an installed one
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import harness  # noqa: E402
import parts  # noqa: E402,F401  (registers the parts)

KVG_REQUIREMENTS = ["keras-video-generators==1.0.14", "tensorflow==2.15.*", "numpy<2", "opencv-python"]
DEFAULT_KVG_VENV = harness.RESULTS_DIR / "kvg-venv"


def setup_kvg(venv: Path, base_python: str) -> int:
    """keras-video-generators 1.0.14 imports `keras.utils.data_utils`-era APIs: it needs
    TensorFlow 2.15 (Keras 2) and numpy<2, so it gets a virtual environment of its own."""
    print(f"creating {venv} with {base_python} and installing {' '.join(KVG_REQUIREMENTS)}")
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run(pip + KVG_REQUIREMENTS, check=True)
    print(f"done: runs will find it there, or set VAREC_BENCH_KVG_PYTHON={venv / 'bin' / 'python'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="*", default=["all"], help="part names, 'all', 'list' or 'setup-kvg'")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per case (default 5, quick 3)")
    parser.add_argument("--quick", action="store_true", help="fewer cases and rounds")
    parser.add_argument("--write-docs", action="store_true", help="regenerate docs/performance.md afterwards")
    parser.add_argument(
        "--kvg-python",
        default=None,
        help="Python of the keras-video-generators side venv (else $VAREC_BENCH_KVG_PYTHON, "
        f"else {DEFAULT_KVG_VENV.relative_to(harness.REPO)}/bin/python when it exists)",
    )
    parser.add_argument("--kvg-venv", type=Path, default=DEFAULT_KVG_VENV, help="where setup-kvg creates it")
    parser.add_argument(
        "--kvg-base-python", default=sys.executable, help="interpreter setup-kvg builds the venv from (<= 3.11)"
    )
    args = parser.parse_args(argv)

    if args.what == ["list"]:
        for p in sorted(harness.PARTS.values(), key=lambda p: p.order):
            print(f"{p.name:10s} {p.title}")
        return 0
    if args.what == ["setup-kvg"]:
        return setup_kvg(args.kvg_venv, args.kvg_base_python)

    names = sorted(harness.PARTS, key=lambda n: harness.PARTS[n].order) if "all" in args.what else args.what
    unknown = [n for n in names if n not in harness.PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(harness.PARTS)}")

    repeats = args.repeats or (3 if args.quick else 5)
    work_dir = harness.RESULTS_DIR / "work"
    work_dir.mkdir(parents=True, exist_ok=True)
    ctx = harness.Context(
        repeats=repeats,
        quick=args.quick,
        work_dir=work_dir,
        options={"kvg_python": args.kvg_python},
        log=lambda message: print(message, flush=True),
    )
    for name in names:
        p = harness.PARTS[name]
        print(f"== {p.title} ({name}), {repeats} rounds", flush=True)
        started = time.time()
        machine = harness.machine_info()
        try:
            result = p.run(ctx)
        except harness.Skipped as why:
            print(f"   skipped: {why} (an earlier results/{name}.json, if any, is kept)", flush=True)
            continue
        path = harness.write_result(
            p, result, started=started, settings={"repeats": repeats, "quick": args.quick}, machine=machine
        )
        for target in result.targets:
            verdict = {True: "met", False: "NOT met", None: "not measured"}[target.met]
            print(f"   target: {target.text}: {target.measured} -> {verdict}")
        print(f"   wrote {path.relative_to(harness.REPO)} ({time.time() - started:.0f} s)", flush=True)

    if args.write_docs:
        import render_docs

        print(f"wrote {render_docs.write().relative_to(harness.REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
