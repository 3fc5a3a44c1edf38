"""Evaluation benchmarks: mmlu, mmlu_branch, mt_bench, mt_bench_branch, dk_bench and keyfacts.

Entry point: `labrador.eval.runner.run_evaluation(EvalOptions(...))` (what `ilab model evaluate` calls).
This module stays import-free so that the CLI can read the benchmark names cheaply.
"""

BENCHMARKS = ("mmlu", "mmlu_branch", "mt_bench", "mt_bench_branch", "dk_bench", "keyfacts")
JUDGED = frozenset({"mt_bench", "mt_bench_branch", "dk_bench"})

__all__ = ["BENCHMARKS", "JUDGED"]
