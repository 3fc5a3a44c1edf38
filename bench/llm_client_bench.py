"""In-process llama.cpp client vs direct llama-cpp-python: tokens/s and worker utilisation.

Baseline: one `llama_cpp.Llama`, requests one after another in a plain loop (the best a single context can do).
Candidate: `get_client()` with 8 asyncio callers submitting at once through `achat` (the generation stage's
pattern). Both use the same model, thread count, prompts and greedy decoding; rounds are interleaved so
load from other processes hits both alike. Prints tokens/s of each, their ratio, and busy/wall of the worker.

    .venv/bin/python bench/llm_client_bench.py [--rounds 3] [--requests 8] [--max-tokens 48]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from labrador.llm import SamplingParams, get_client
from labrador.llm.worker import default_threads
from labrador.models.embedded import embedded_model_path

PROMPTS = [f"Write a short sentence about the number {i}." for i in range(64)]


def direct(llm, n: int, max_tokens: int) -> tuple[int, float]:
    start, tokens = time.perf_counter(), 0
    for prompt in PROMPTS[:n]:
        llm.reset()
        out = llm.create_chat_completion(messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
                                         temperature=0.0)
        tokens += out["usage"]["completion_tokens"]
    return tokens, time.perf_counter() - start


def through_client(client, n: int, max_tokens: int) -> tuple[int, float, float]:
    params = SamplingParams(max_tokens=max_tokens)

    async def run() -> int:
        results = await asyncio.gather(*[client.achat([{"role": "user", "content": p}], params)
                                         for p in PROMPTS[:n]])
        return sum(r.completion_tokens for r in results)

    busy_before, start = client.busy_seconds, time.perf_counter()
    tokens = asyncio.run(run())
    wall = time.perf_counter() - start
    return tokens, wall, (client.busy_seconds - busy_before) / wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args()
    import llama_cpp

    threads = default_threads()
    llm = llama_cpp.Llama(model_path=str(embedded_model_path()), n_ctx=4096, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    client = get_client(None, n_threads=threads)
    base_rates, cand_rates, utils = [], [], []
    for r in range(args.rounds):
        tokens, wall = direct(llm, args.requests, args.max_tokens)
        base_rates.append(tokens / wall)
        tokens, wall, util = through_client(client, args.requests, args.max_tokens)
        cand_rates.append(tokens / wall)
        utils.append(util)
        print(f"round {r + 1}: direct {base_rates[-1]:.1f} tok/s, client x{args.requests} concurrent "
              f"{cand_rates[-1]:.1f} tok/s, busy/wall {util:.3f}")
    base, cand = sorted(base_rates)[len(base_rates) // 2], sorted(cand_rates)[len(cand_rates) // 2]
    print(f"median: direct {base:.1f} tok/s, client {cand:.1f} tok/s, ratio {cand / base:.3f}, "
          f"busy/wall {sorted(utils)[len(utils) // 2]:.3f} (threads={threads})")
    client.close()


if __name__ == "__main__":
    main()
