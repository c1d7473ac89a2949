"""The benchmark harness and docs generator (benchmarks/), without timing anything."""

from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def harness(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import harness

    return harness


def test_interleaved_varies_who_runs_before_whom_and_ratios_pair_rounds(harness):
    order = []
    candidates = {name: (lambda name=name: order.append(name)) for name in "abcde"}
    harness.interleaved(candidates, 8, warmup=0)
    rounds = [order[i:i + 5] for i in range(0, len(order), 5)]
    assert all(sorted(r) == list("abcde") for r in rounds)  # each once per round
    before = {name: {r[r.index(name) - 1] for r in rounds if r.index(name)} for name in "abcde"}
    assert all(len(predecessors) > 1 for predecessors in before.values()), before
    again = []
    harness.interleaved({name: (lambda name=name: again.append(name)) for name in "abcde"}, 8, warmup=0)
    assert again == order  # seeded: a rerun runs them in the same order
    times = harness.interleaved({"a": lambda: None, "b": lambda: 2.0}, 3, warmup=0)
    assert times["b"] == [2.0, 2.0, 2.0]  # a candidate may report its own time
    assert harness.paired_ratio([2.0, 4.0, 6.0], [1.0, 1.0, 2.0]) == 3.0
    rows = harness.throughput_rows("t", "c", {"base": [2.0, 2.0], "fast": [0.5, 1.0]}, "base", items=4)
    fast = next(r for r in rows if r.candidate == "fast")
    assert fast.value == pytest.approx(4 / 0.75) and fast.ratio_vs_baseline == pytest.approx(3.0)
    assert fast.baseline == "base" and next(r for r in rows if r.candidate == "base").baseline is None


def test_docs_are_generated_from_results(harness, tmp_path, monkeypatch):
    import render_docs

    part = harness.Part("demo", "Demo part", 9, "What demo measures.", lambda ctx: None)
    result = harness.PartResult(
        rows=harness.duration_rows("a table", "case one", {"floor": [1.0, 1.2], "cmd": [1.5, 1.8]}, "floor"),
        targets=[harness.Target("cmd <= 1.6x floor", "1.50x", True)],
        notes=["a note"],
    )
    monkeypatch.setattr(harness, "RESULTS_DIR", tmp_path)
    harness.write_result(part, result, started=0.0, settings={"repeats": 2}, machine={"cpu": "test cpu"})
    text = render_docs.render(harness.load_results(tmp_path))
    assert "Do not edit by hand" in text and "python benchmarks/run.py all --write-docs" in text
    assert "| Demo part | cmd <= 1.6x floor | 1.50x | yes |" in text
    assert "| case one | 1.10 (baseline) | 1.65 (1.50x) |" in text
    assert "test cpu" in text and "- a note" in text


def test_a_skipped_part_keeps_its_earlier_results(harness, tmp_path, monkeypatch, capsys):
    import run

    def no_gpu(ctx):
        raise harness.Skipped("no GPU visible")

    monkeypatch.setitem(harness.PARTS, "gpu-demo", harness.Part("gpu-demo", "GPU demo", 9, "On a GPU.", no_gpu))
    monkeypatch.setattr(harness, "RESULTS_DIR", tmp_path)
    earlier = tmp_path / "gpu-demo.json"
    earlier.write_text('{"measured": "elsewhere"}')
    assert run.main(["gpu-demo", "--repeats", "1"]) == 0
    assert earlier.read_text() == '{"measured": "elsewhere"}'
    assert "skipped: no GPU visible" in capsys.readouterr().out


def test_what_a_part_learns_of_the_machine_reaches_the_docs(harness, tmp_path, monkeypatch):
    import render_docs

    part = harness.Part("gpu-demo", "GPU demo", 9, "On a GPU.", lambda ctx: None)
    result = harness.PartResult(
        rows=harness.throughput_rows("gpu table", "case", {"base": [1.0], "fast": [0.5]}, "base"),
        machine={"accelerator": "Test GPU 80GB", "keras_backend": "jax 0.0"},
    )
    monkeypatch.setattr(harness, "RESULTS_DIR", tmp_path)
    harness.write_result(part, result, started=0.0, settings={"repeats": 1}, machine={"cpu": "test cpu", "tensorflow": None})
    text = render_docs.render(harness.load_results(tmp_path))
    assert "| GPU | Test GPU 80GB |" in text and "| Keras backend | jax 0.0 |" in text
    assert "| TensorFlow |  |" in text  # a framework that is not there shows empty, not "None"


def test_a_part_not_rerun_keeps_its_published_figures_and_a_rerun_one_is_published(harness, tmp_path, monkeypatch):
    import render_docs

    results, published, page = tmp_path / "results", tmp_path / "published", tmp_path / "performance.md"
    runs = (  # directory, part, speed-up, run start (s since the epoch), --quick
        (published, "gpu-demo", 2.0, 100.0, False), (published, "cpu-demo", 9.0, 100.0, False),
        (results, "cpu-demo", 3.0, 200.0, False),
        (published, "old-demo", 5.0, 300.0, False), (results, "old-demo", 7.0, 200.0, False),  # a stale file here
        (results, "quick-demo", 4.0, 200.0, True),
    )
    for directory, part_name, value, started, quick in runs:
        monkeypatch.setattr(harness, "RESULTS_DIR", directory)
        part = harness.Part(part_name, part_name.upper(), 9, f"{part_name} measures.", lambda ctx: None)
        rows = harness.throughput_rows(f"{part_name} table", "case", {"base": [1.0], "fast": [1.0 / value]}, "base")
        harness.write_result(part, harness.PartResult(rows=rows), started=started,
                             settings={"repeats": 1, "quick": quick}, machine={})
    render_docs.write(page, results, published)
    text = page.read_text()
    assert "| case | 1 (baseline) | 2 (2.00x) |" in text  # gpu-demo, from published/
    assert "| case | 1 (baseline) | 3 (3.00x) |" in text  # cpu-demo, this run's
    assert "9 (9.00x)" not in text  # not cpu-demo's older published figures
    assert "| case | 1 (baseline) | 5 (5.00x) |" in text and "7 (7.00x)" not in text  # the later run wins
    assert "| case | 1 (baseline) | 4 (4.00x) |" in text  # a quick run is shown...
    assert "kept from `benchmarks/published/`" in text and "`gpu-demo`, `old-demo`" in text
    republished = {r["part"]: r for r in harness.load_results(published)}
    assert republished["cpu-demo"]["rows"] == next(r for r in harness.load_results(results) if r["part"] == "cpu-demo")["rows"]
    assert republished["gpu-demo"]["rows"][1]["value"] == 2.0 and republished["old-demo"]["rows"][1]["value"] == 5.0
    assert "quick-demo" not in republished  # ...but not published
