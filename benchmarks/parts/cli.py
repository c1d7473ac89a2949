"""Part 5: `varec --help` start-up, against importing the CLI's own toolkit (typer + rich)."""

from __future__ import annotations

from harness import Context, PartResult, Target, duration_rows, interleaved, median, part
from parts.predict import _timed

FLOOR = "import typer, rich"
TARGET_RATIO = 3.0
COMMANDS = {
    "varec --help": ["-m", "varec_cli", "--help"],
    "varec predict --help": ["-m", "varec_cli", "predict", "--help"],
    "varec --version": ["-m", "varec_cli", "--version"],
}


@part(
    "cli",
    title="Command-line start-up",
    order=5,
    description="""
`varec --help`, `varec predict --help` and `varec --version` in a fresh process, against the floor
`python -c "import typer, rich"` (the toolkit the CLI is built with). They must not import TensorFlow,
Keras or OpenCV (a unit test checks that); this measures what that buys. Ratio: command time divided by
the floor's, median over interleaved rounds (lower is better).
""",
)
def run(ctx: Context) -> PartResult:
    result = PartResult()
    candidates = {FLOOR: _timed(["-c", "import typer, rich"], FLOOR)}
    for name, args in COMMANDS.items():
        candidates[name] = _timed(args, name)
    times = interleaved(candidates, max(ctx.repeats, 10))
    result.rows.extend(duration_rows("start-up", "fresh process", times, FLOOR))
    help_ratio = next(r.ratio_vs_baseline for r in result.rows if r.candidate == "varec --help")
    result.targets.append(
        Target(
            f"`varec --help` <= {TARGET_RATIO:g}x `import typer, rich`",
            f"{help_ratio:.2f}x ({median(times['varec --help']):.3f} s vs {median(times[FLOOR]):.3f} s)",
            help_ratio <= TARGET_RATIO,
        )
    )
    return result
