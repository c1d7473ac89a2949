"""Benchmark parts. Each module registers itself with `harness.part`; add new parts here.

Part modules may import `harness` and varec; they run inside `benchmarks/run.py`.
"""

from parts import cli, clips, predict, streaming, training, training_gpu, writing  # noqa: F401  (registration)
