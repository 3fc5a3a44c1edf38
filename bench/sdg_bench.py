"""SDG throughput: `simple` on the bundled sample taxonomy with the embedded SmolLM2 teacher.

1. Against one local server (`ilab model serve`, llama.cpp) at concurrency 1 (InstructLab's behaviour against
   llama.cpp) and 8: accepted rows per minute and teacher tokens per accepted row. Rounds are interleaved
   (1, 8, 1, 8, ...) in one session because other jobs share the CPU; the cache is off so every call is real.
2. In-process llama.cpp at 1 and 8 workers: teacher busy time over wall time.

Usage: python bench/sdg_bench.py [--rounds 1] [--scale 1] [--max-tokens 64] [--threads 1] [--skip-server]
       [--skip-in-process]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labrador.sdg.context import GenerateOptions
from labrador.sdg.generate import GenerateRequest, generate

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "labrador" / "data" / "sample_taxonomy"
ILAB = str(Path(sys.executable).with_name("ilab"))


def make_taxonomy(root: Path) -> Path:
    dest = root / "taxonomy"
    shutil.copytree(SAMPLE, dest)
    git = ["git", "-c", "user.email=b@example.com", "-c", "user.name=b"]
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "sample"]):
        subprocess.run([*git, *cmd], cwd=dest, check=True)
    return dest


def one_run(taxonomy: Path, out: Path, workers: int, args: argparse.Namespace, client=None,
            endpoint: str | None = None) -> dict:
    options = GenerateOptions(scale_factor=args.scale, max_num_tokens=args.max_tokens, chunk_size=1000,
                              num_workers=workers, seed=11, timeout=900)
    request = GenerateRequest(taxonomy, out, taxonomy_base="empty", pipeline="simple", options=options,
                              endpoint_urls=[endpoint] if endpoint else [], use_cache=False)
    started = time.perf_counter()
    result = generate(request, client=client)
    wall = time.perf_counter() - started
    rows = sum(leaf["rows"] for leaf in result.summary["leaves"])
    t = result.summary["teacher_stats"]
    tokens = t["prompt_tokens"] + t["completion_tokens"]
    for leaf in result.summary["leaves"]:
        if leaf["error"]:
            print(f"  note: {leaf['leaf']}: {leaf['error']}", flush=True)
    return {"workers": workers, "wall_s": round(wall, 1), "accepted_rows": rows, "requests": t["requests"],
            "rows_per_min": round(60 * rows / wall, 2), "teacher_tokens": tokens,
            "tokens_per_row": round(tokens / rows, 1) if rows else None, "busy_ratio": t["busy_ratio"]}


def start_server(threads: int, tmp: Path) -> tuple[subprocess.Popen, str]:
    ready = tmp / "ready.json"
    proc = subprocess.Popen([ILAB, "model", "serve", "--port", "0", "--threads", str(threads), "--max-ctx-size",
                             "4096", "--ready-file", str(ready)], stdout=subprocess.DEVNULL,
                            stderr=(tmp / "server.log").open("w"))
    deadline = time.time() + 300
    while not ready.exists():
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit("`ilab model serve` did not start")
        time.sleep(0.5)
    time.sleep(0.5)
    url = json.loads(ready.read_text())["url"].rstrip("/")
    return proc, url if url.endswith("/v1") else url + "/v1"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-server", action="store_true")
    parser.add_argument("--skip-in-process", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sdg-bench-"))
    taxonomy = make_taxonomy(tmp)
    results: dict[str, list[dict]] = {"server": [], "in_process": []}
    if not args.skip_server:
        proc, url = start_server(args.threads, tmp)
        try:
            for r in range(args.rounds):
                for workers in (1, 8):
                    if proc.poll() is not None:
                        raise SystemExit(f"the server exited ({proc.returncode}): "
                                         f"{(tmp / 'server.log').read_text()[-2000:]}")
                    row = one_run(taxonomy, tmp / f"s{r}{workers}", workers, args, endpoint=url)
                    print("server", row, flush=True)
                    results["server"].append(row)
        finally:
            proc.terminate()
            proc.wait(30)
    from labrador.llm import get_client

    client = get_client(None, n_threads=args.threads, n_ctx=4096)
    try:
        for r in range(0 if args.skip_in_process else args.rounds):
            for workers in (1, 8):
                row = one_run(taxonomy, tmp / f"p{r}{workers}", workers, args, client=client)
                print("in-process", row, flush=True)
                results["in_process"].append(row)
    finally:
        client.close()
    for mode, rows in results.items():
        for workers in (1, 8):
            sel = [r for r in rows if r["workers"] == workers]
            if sel:
                rpm = sum(r["rows_per_min"] for r in sel) / len(sel)
                busy = sum(r["busy_ratio"] for r in sel) / len(sel)
                tpr = [r["tokens_per_row"] for r in sel if r["tokens_per_row"]]
                print(f"{mode:10s} workers={workers}: {rpm:.2f} accepted rows/min, "
                      f"{(sum(tpr) / len(tpr)) if tpr else float('nan'):.0f} teacher tokens/row, busy/wall {busy:.2f}")
        base = [r for r in rows if r["workers"] == 1]
        cand = [r for r in rows if r["workers"] == 8]
        if base and cand:
            ratio = (sum(r["rows_per_min"] for r in cand) / len(cand)) / max(
                1e-9, sum(r["rows_per_min"] for r in base) / len(base))
            print(f"{mode:10s} rows/min ratio workers 8 vs 1: {ratio:.2f}x")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
