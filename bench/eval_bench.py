"""Evaluation throughput on this machine: items per minute for mmlu and mt_bench with the embedded SmolLM2.

Usage: .venv/bin/python bench/eval_bench.py [--mmlu-questions 20] [--few-shots 5] [--mt-questions 2]
                                            [--max-tokens 64] [--rounds 2] [--threads 1]

- mmlu: `run_multiple_choice` (one decode of the prompt, every answer letter read from the same logits)
  against a naive baseline that scores each letter with its own loglikelihoods call (four prompt decodes),
  on a synthetic MMLU-format set with `--few-shots` examples; rounds interleaved so background load hits both.
- mt_bench: questions (two turns each, candidate and judge = SmolLM2) per minute on the first
  `--mt-questions` MT-Bench questions from ../shared/data/mt_bench, fresh, then again resumed from the call
  cache (the crash-recovery path).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
MT_DATA = ROOT.parent / "shared" / "data" / "mt_bench"


def synthetic_mmlu(n: int, shots: int):
    from labrador.eval.mmlu_data import MCDataset
    from labrador.eval.multiple_choice import MCQuestion

    def q(i: int, subject: str) -> MCQuestion:
        right = str(i * 7 % 97)
        wrong = [str((i * 7 + k * 13) % 97 + 100) for k in range(1, 4)]
        pos = i % 4
        return MCQuestion(f"In the table of sevens modulo 97, what is entry {i}?",
                          tuple(wrong[:pos] + [right] + wrong[pos:]), pos, subject=subject, id=f"{subject}/{i}")

    return MCDataset(test=[q(i, "arithmetic") for i in range(n)], dev=[q(1000 + i, "arithmetic") for i in range(shots)])


def bench_mmlu(client, n: int, shots: int, rounds: int) -> None:
    from labrador.eval.calls import Model
    from labrador.eval.mmlu import run_multiple_choice
    from labrador.eval.multiple_choice import build_prompt, few_shot_examples

    data = synthetic_mmlu(n, shots)
    model = Model("smollm2", client, "bench")  # no cache: every call is real

    def naive() -> None:
        for q in data.test:
            prompt = build_prompt(q, few_shot_examples(q, data.dev, data.test, shots))
            for letter in "ABCD":
                client.loglikelihoods(prompt, [f" {letter}"])

    runs = {"labrador mmlu": lambda: run_multiple_choice(model, data, shots), "naive per-letter baseline": naive}
    timings: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            timings[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    print(f"\nmmlu: {n} questions, {shots}-shot, {rounds} interleaved rounds (median)")
    base = statistics.median(timings["naive per-letter baseline"])
    for name, values in timings.items():
        med, med_cpu = statistics.median(values), statistics.median(cpu[name])
        print(f"  {name:<28} {60 * n / med:8.1f} questions/min ({60 * n / med_cpu:.1f} per CPU-minute)   "
              f"{base / med:5.2f}x vs baseline")


def bench_mt(client, spec: str, n: int, max_tokens: int) -> None:
    from labrador.eval.runner import EvalOptions, run_evaluation

    if not (MT_DATA / "question.jsonl").is_file():
        print(f"\nmt_bench: skipped ({MT_DATA} not found)")
        return
    opts = EvalOptions(benchmark="mt_bench", model=spec, judge_model=spec, data_dir=MT_DATA, max_questions=n,
                       max_tokens=max_tokens, judge_max_tokens=max_tokens,
                       output_dir=Path(tempfile.mkdtemp(prefix="eval-bench-")))
    quiet = Console(file=io.StringIO())
    start, start_cpu = time.perf_counter(), time.process_time()
    summary = run_evaluation(opts, quiet, clients={spec: client}).summary
    fresh, fresh_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    start = time.perf_counter()
    run_evaluation(opts, quiet, clients={spec: client})
    resumed = time.perf_counter() - start
    print(f"\nmt_bench: {n} questions x 2 turns, max_tokens {max_tokens} (candidate and judge)")
    print(f"  fresh                        {60 * n / fresh:8.2f} questions/min  "
          f"({60 * summary['judgments'] / fresh:.2f} judged turns/min, {fresh:.1f} s; "
          f"{60 * n / fresh_cpu:.2f} questions per CPU-minute)")
    print(f"  resumed from the call cache  {60 * n / resumed:8.1f} questions/min  ({fresh / resumed:.0f}x fresh)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mmlu-questions", type=int, default=20)
    parser.add_argument("--few-shots", type=int, default=5)
    parser.add_argument("--mt-questions", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # figures appear as they are measured
    # a private cache dir, so the fresh mt_bench run really is fresh
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="eval-bench-cache-")
    sys.path.insert(0, str(ROOT / "src"))
    from labrador.llm import get_client
    from labrador.models.embedded import embedded_model_path

    spec = str(embedded_model_path())
    client = get_client(spec, n_threads=args.threads, n_ctx=4096)
    print(f"model: {Path(spec).name}, llama.cpp in-process, n_threads={args.threads}, cores={os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    try:
        bench_mmlu(client, args.mmlu_questions, args.few_shots, args.rounds)
        bench_mt(client, spec, args.mt_questions, args.max_tokens)
    finally:
        client.close()


if __name__ == "__main__":
    main()
