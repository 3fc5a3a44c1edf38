"""Tokens/s of `ilab model serve` against direct llama-cpp-python generation of the same model.

Baseline: `Llama.create_chat_completion` in this process. Candidate: the same requests through a real
`ilab model serve` subprocess on 127.0.0.1 (same GGUF, same thread count), with the official openai client.
Modes, interleaved prompt by prompt and repeated, so that load from other processes hits both alike:
  single     one request at a time: direct vs server (non-streaming) vs server (streaming)
  concurrent 8 clients at once against the server vs the same 8 prompts generated back to back directly
             (one llama.cpp context decodes one sequence at a time, so sequential is the direct best case)
Greedy decoding with a fixed max_tokens; the bench checks that server and direct produce the same text.
Besides tokens/s (wall clock) it reports CPU seconds per token of this process plus the server process: on a
machine shared with other work, wall-clock rates swing by +-10% from run to run while CPU per token does not,
so the CPU ratio is the sharper measure of the server's own overhead.

    .venv/bin/python bench/serve_bench.py [--threads 1] [--max-tokens 64] [--repeats 3] [--clients 8]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PROMPTS = [
    "Write three sentences about the sea.",
    "Explain what a compiler does.",
    "Give me a short recipe for pancakes.",
    "Describe the city of Paris.",
    "What is photosynthesis?",
    "List some uses of copper.",
    "Tell me a short story about a cat.",
    "Why is the sky blue?",
]
ILAB = str(Path(sys.executable).with_name("ilab"))


def messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are a helpful AI assistant."}, {"role": "user", "content": prompt}]


def start_server(model: str, threads: int, n_ctx: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([ILAB, "model", "serve", "-m", model, "--port", "0", "--threads", str(threads),
                             "--max-ctx-size", str(n_ctx)], stdout=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 300)
    line = proc.stdout.readline() if ready else ""
    if " at http://" not in line:
        proc.kill()
        sys.exit(f"server did not start: {line!r}")
    return proc, line.split(" at ", 1)[1].split()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="GGUF path (default: the embedded SmolLM2)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--modes", default="single,concurrent", help="comma-separated: single, concurrent")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    modes = set(args.modes.split(","))

    import llama_cpp
    import openai

    from labrador.models.embedded import embedded_model_path

    model = args.model or str(embedded_model_path())
    direct = llama_cpp.Llama(model_path=model, n_ctx=args.n_ctx, n_threads=args.threads,
                             n_threads_batch=args.threads, verbose=False)
    proc, url = start_server(model, args.threads, args.n_ctx)
    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=600)
    sampling = {"temperature": 0.0, "top_p": 1.0, "max_tokens": args.max_tokens}
    # per mode: [tokens, wall seconds, CPU seconds of both processes (bench + server)]
    totals = {k: [0, 0.0, 0.0] for k in ("direct", "server", "server_stream", "direct_seq", "server_conc")}

    def cpu_now() -> float:
        """CPU seconds used so far by this process (direct model, clients) plus the server process."""
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return time.process_time() + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    texts: dict[tuple[str, str], str] = {}

    def run_direct(prompt: str) -> tuple[str, int]:
        out = direct.create_chat_completion(messages(prompt), top_k=0, min_p=0.0, repeat_penalty=1.0, **sampling)
        return out["choices"][0]["message"]["content"], out["usage"]["completion_tokens"]

    def run_server(prompt: str) -> tuple[str, int]:
        out = client.chat.completions.create(model="m", messages=messages(prompt), **sampling)
        return out.choices[0].message.content, out.usage.completion_tokens

    def run_stream(prompt: str) -> tuple[str, int]:
        text, tokens = "", 0
        for chunk in client.chat.completions.create(model="m", messages=messages(prompt), stream=True,
                                                    stream_options={"include_usage": True}, **sampling):
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            if chunk.usage:
                tokens = chunk.usage.completion_tokens
        return text, tokens

    def timed(key: str, fn, prompt: str) -> str:
        start, cpu = time.perf_counter(), cpu_now()
        text, tokens = fn(prompt)
        totals[key][0] += tokens
        totals[key][1] += time.perf_counter() - start
        totals[key][2] += cpu_now() - cpu
        return text

    try:
        for prompt in PROMPTS[:2]:  # warm-up: page the weights in on both sides
            run_direct(prompt), run_server(prompt)
        for repeat in range(args.repeats):
            order = PROMPTS if repeat % 2 == 0 else PROMPTS[::-1]
            half = len(order) // 2
            for i, prompt in enumerate(order if "single" in modes else []):  # alternate who goes first
                # The streamed request uses another prompt than the plain one: llama.cpp reuses a cached prompt
                # prefix, and a server asked the same prompt twice in a row would skip prompt processing.
                other = order[(i + half) % len(order)]
                runs = [("direct", run_direct, prompt), ("server", run_server, prompt),
                        ("server_stream", run_stream, other)]
                for key, fn, text_prompt in runs if i % 2 == 0 else runs[::-1]:
                    texts[(key, text_prompt)] = timed(key, fn, text_prompt)
            prompts = PROMPTS[:args.clients]
            first = [("direct_seq", None), ("server_conc", None)]
            for key, _ in (first if repeat % 2 == 0 else first[::-1]) if "concurrent" in modes else ():
                start, cpu = time.perf_counter(), cpu_now()
                if key == "direct_seq":
                    tokens = sum(run_direct(p)[1] for p in prompts)
                else:
                    with ThreadPoolExecutor(args.clients) as pool:
                        tokens = sum(t for _, t in pool.map(run_server, prompts))
                totals[key][0] += tokens
                totals[key][1] += time.perf_counter() - start
                totals[key][2] += cpu_now() - cpu
            print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait(timeout=60)

    rate = {k: tokens / seconds if seconds else float("nan") for k, (tokens, seconds, _) in totals.items()}
    # CPU seconds per 1000 tokens: insensitive to how much CPU other users of the machine take
    cpu_ms = {k: 1000 * cpu / tokens if tokens else float("nan") for k, (tokens, _, cpu) in totals.items()}
    figures = {
        "threads": args.threads, "max_tokens": args.max_tokens, "repeats": args.repeats, "clients": args.clients,
        "tokens_per_s": {k: round(v, 2) for k, v in rate.items()},
        "cpu_ms_per_token": {k: round(v, 3) for k, v in cpu_ms.items()},
        "ratio_single_server_vs_direct": round(rate["server"] / rate["direct"], 4),
        "ratio_single_stream_vs_direct": round(rate["server_stream"] / rate["direct"], 4),
        "ratio_concurrent_server_vs_direct_sequential": round(rate["server_conc"] / rate["direct_seq"], 4),
        "cpu_count": os.cpu_count(),
    }
    single = "single" in modes
    if single:
        print(f"single stream: direct {rate['direct']:.1f} tok/s, server {rate['server']:.1f} tok/s "
          f"(ratio {figures['ratio_single_server_vs_direct']:.3f}), server streaming {rate['server_stream']:.1f} "
              f"tok/s (ratio {figures['ratio_single_stream_vs_direct']:.3f})")
    if single:
        print(f"CPU per token (server + client, vs direct): server {cpu_ms['server']:.1f} ms vs "
              f"{cpu_ms['direct']:.1f} ms (ratio {cpu_ms['server'] / cpu_ms['direct']:.3f}), streaming "
              f"{cpu_ms['server_stream']:.1f} ms (ratio {cpu_ms['server_stream'] / cpu_ms['direct']:.3f})")
    if "concurrent" in modes:
        print(f"CPU per token, {args.clients} clients: server {cpu_ms['server_conc']:.1f} ms vs direct sequential "
              f"{cpu_ms['direct_seq']:.1f} ms (ratio {cpu_ms['server_conc'] / cpu_ms['direct_seq']:.3f})")
        print(f"{args.clients} concurrent clients: server {rate['server_conc']:.1f} tok/s vs direct sequential "
              f"{rate['direct_seq']:.1f} tok/s (ratio {figures['ratio_concurrent_server_vs_direct_sequential']:.3f})")
    if single:
        differ = {key: sum(texts[(key, p)] != texts[("direct", p)] for p in PROMPTS) for key in
                  ("server", "server_stream")}
        figures["text_mismatches"] = differ
        print(f"greedy texts differing from direct (last repeat, {len(PROMPTS)} prompts): server "
              f"{differ['server']}, server streaming {differ['server_stream']}")
        ok = figures["ratio_single_server_vs_direct"] >= 0.9
        print(f"target (server single stream within 10% of direct): {'met' if ok else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
