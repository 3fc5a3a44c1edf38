"""Conversion cost on the embedded SmolLM2-135M (Q4_1): times and output sizes, plus the GGUF -> HF fast path
against transformers' own GGUF loader (the baseline), run interleaved in this one process.

Usage: .venv/bin/python bench/convert_bench.py [--runs 2] [--workdir /tmp/convert-bench]
Times are CPU seconds of this process (user+sys, children excluded; llama.cpp's quantizer threads are counted)
and wall seconds; other work on the machine inflates wall time, so compare the CPU columns.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from labrador.models.convert import _gguf_to_hf_transformers, gguf_to_hf, hf_to_gguf
from labrador.models.embedded import embedded_model_path
from labrador.models.gguf_meta import GgufFile


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure(fn: Callable[[], Path]) -> tuple[float, float, float]:
    cpu, wall = _cpu(), time.perf_counter()
    out = fn()
    size = sum(p.stat().st_size for p in out.rglob("*")) if out.is_dir() else out.stat().st_size
    return _cpu() - cpu, time.perf_counter() - wall, size / 1e6


def _transformers_path(src: Path, out: Path) -> Path:
    with GgufFile(src) as gg:
        _gguf_to_hf_transformers(src, out, "float32", gg.metadata, None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="convert-bench-"))
    src = embedded_model_path()
    print(f"input: {src.name} ({src.stat().st_size / 1e6:.1f} MB)")
    hf_dir = gguf_to_hf(src, work / "hf", force=True)  # warm-up (imports) and the HF input for the other rows
    jobs: dict[str, Callable[[], Path]] = {
        "gguf->hf transformers loader (baseline)": lambda: _transformers_path(src, work / "hf-transformers"),
        "gguf->hf labrador (float32)": lambda: gguf_to_hf(src, work / "hf-native", force=True),
        "hf->gguf f16": lambda: hf_to_gguf(hf_dir, work / "f16.gguf", "f16", force=True),
        "hf->gguf q8_0": lambda: hf_to_gguf(hf_dir, work / "q8_0.gguf", "q8_0", force=True),
        "hf->gguf q4_1 (llama.cpp quantizer)": lambda: hf_to_gguf(hf_dir, work / "q4_1.gguf", "q4_1", force=True),
        "hf->gguf q4_k_m (llama.cpp quantizer)": lambda: hf_to_gguf(hf_dir, work / "q4_k_m.gguf", "q4_k_m",
                                                                    force=True),
    }
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in jobs}
    for _ in range(args.runs):  # interleaved so background load hits every row alike
        for name, job in jobs.items():
            shutil.rmtree(work / "hf-transformers", ignore_errors=True)
            results[name].append(_measure(job))
    print(f"{'conversion':<40} {'cpu s':>7} {'wall s':>7} {'size MB':>8}")
    for name, rows in results.items():
        print(f"{name:<40} {statistics.median(r[0] for r in rows):7.1f} {statistics.median(r[1] for r in rows):7.1f}"
              f" {rows[-1][2]:8.1f}")
    base = statistics.median(r[0] for r in results["gguf->hf transformers loader (baseline)"])
    fast = statistics.median(r[0] for r in results["gguf->hf labrador (float32)"])
    print(f"gguf->hf speed-up over transformers' loader (CPU time): {base / fast:.1f}x")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
