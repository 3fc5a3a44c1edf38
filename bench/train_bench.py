"""Training throughput: labrador's packed trainer vs a plain Hugging Face `Trainer` with padding, same run.

Both do full fine-tuning of the embedded SmolLM2-135M (float32, dequantized) on the same realistic mixed-length
conversations (short skill Q&A and long document-grounded knowledge samples), same samples per optimizer step,
same loss masks (assistant tokens only), AdamW. Each measurement runs in a fresh subprocess (so peak memory is
per trainer) and the two are interleaved round by round, so background load hits both alike.

Figures: tokens/s (real, non-padding tokens per second of wall time), the ratio, model FLOPs utilisation
(6 x parameters x tokens/s against a measured float32 matmul peak), peak RSS of each process.

Usage: .venv/bin/python bench/train_bench.py [--samples 32] [--rounds 2] [--batch 8] [--threads N]
Target (issue 5): labrador >= 1.5x the Trainer baseline in tokens/s.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "src/labrador/data/sample_taxonomy/knowledge/geography/towns"


def _corpus() -> list[str]:
    words = []
    for path in sorted(DOC.rglob("*")):
        if path.suffix in (".md", ".yaml"):
            words += path.read_text(encoding="utf-8").split()
    return words or ("the town grew around the ferry and the market by the river " * 50).split()


def make_records(count: int, seed: int) -> list[dict]:
    """Mixed lengths like generated LAB data: 60% short skill samples, 40% long document-grounded ones."""
    rng = random.Random(seed)
    words = _corpus()

    def text(n: int) -> str:
        start = rng.randrange(max(1, len(words) - n))
        return " ".join(words[start:start + n])

    records = []
    for _ in range(count):
        if rng.random() < 0.6:
            user, answer = f"Give a synonym for '{text(1)}' and use it in a sentence.", text(rng.randint(10, 60))
        else:
            user = f"{text(rng.randint(120, 380))}\n\nWhat does the passage above say about {text(2)}?"
            answer = text(rng.randint(30, 160))
        records.append({"messages": [{"role": "system", "content": "You are a helpful assistant."},
                                     {"role": "user", "content": user},
                                     {"role": "assistant", "content": answer}]})
    return records


def _tokenized(model_dir: str, samples: int, seed: int):
    from transformers import AutoTokenizer

    from labrador.train.data import Conversation, tokenize_conversation

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    out = []
    for i, record in enumerate(make_records(samples, seed)):
        ids, labels = tokenize_conversation(tokenizer, Conversation(record["messages"], False, i + 1))
        out.append((ids, labels))
    return tokenizer, out


def run_ours(model_dir: str, samples: list, batch: int, max_batch_len: int) -> float:
    import numpy as np
    import torch

    from labrador.train import batching
    from labrador.train.data import ProcessedData

    ids = np.concatenate([np.array(s[0]) for s in samples]).astype(np.int32)
    labels = np.concatenate([np.array(s[1]) for s in samples]).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum([len(s[0]) for s in samples])])
    from labrador.train import attention
    from labrador.train.loop import make_optimizer
    from labrador.train.options import TrainOptions

    data = ProcessedData(ids, labels, offsets, "bench")
    model = _load(model_dir, attention.register())
    optimizer = make_optimizer(model, TrainOptions(), 1e-5)
    lengths, loss_tokens = data.lengths(), data.loss_tokens()
    started = time.perf_counter()
    for step_batch in batching.global_batches(batching.epoch_order(len(data), 0, 0), batch):
        total = float(sum(int(loss_tokens[i]) for i in step_batch))
        for group in batching.pack(step_batch, lengths, max_batch_len):
            (batching.summed_loss(model, batching.collate(data, group)) / total).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - started


def run_trainer(model_dir: str, tokenizer, samples: list, batch: int) -> float:
    import tempfile

    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    model = _load(model_dir)
    dataset = [{"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels} for ids, labels in samples]
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, per_device_train_batch_size=batch, num_train_epochs=1,
                                 learning_rate=1e-5, adam_beta2=0.95, max_grad_norm=1.0, save_strategy="no",
                                 report_to=[], logging_steps=10_000, use_cpu=True, disable_tqdm=True,
                                 dataloader_num_workers=0, seed=0)
        trainer = Trainer(model=model, args=args, train_dataset=dataset,
                          data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100))
        started = time.perf_counter()
        trainer.train()
        return time.perf_counter() - started


def _load(model_dir: str, attn: str = "sdpa"):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation=attn).train()


def matmul_peak_flops(size: int = 2048, repeats: int = 5) -> float:
    """Best of a few float32 matmuls: the machine's practical peak for this thread count."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    best = min(_timed(lambda: torch.matmul(a, b)) for _ in range(repeats))
    return 2 * size**3 / best


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def worker(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer, samples = _tokenized(args.model_dir, args.samples, args.seed)
    tokens = sum(len(ids) for ids, _ in samples)
    if args.worker == "ours":
        seconds = run_ours(args.model_dir, samples, args.batch, args.max_batch_len)
    else:
        seconds = run_trainer(args.model_dir, tokenizer, samples, args.batch)
    params = sum(p.numel() for p in _load(args.model_dir).parameters())
    print(json.dumps({"worker": args.worker, "seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds,
                      "params": params, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "matmul_flops": matmul_peak_flops()}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8, help="samples per optimizer step (both trainers)")
    parser.add_argument("--max-batch-len", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=0, help="torch threads per process (0: torch default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=["ours", "trainer"])
    parser.add_argument("--model-dir")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    from labrador.train import student

    model_dir = str(student.hf_dir_for(student.resolve_student(None)))
    results: dict[str, list[dict]] = {"ours": [], "trainer": []}
    for round_ in range(args.rounds):
        for name in ("ours", "trainer") if round_ % 2 == 0 else ("trainer", "ours"):
            command = [sys.executable, __file__, "--worker", name, "--model-dir", model_dir, "--samples",
                       str(args.samples), "--batch", str(args.batch), "--max-batch-len", str(args.max_batch_len),
                       "--threads", str(args.threads), "--seed", str(args.seed)]
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            record = json.loads(out.strip().splitlines()[-1])
            results[name].append(record)
            print(f"round {round_ + 1} {name:8s} {record['tokens_per_s']:8.1f} tok/s  "
                  f"{record['seconds']:7.1f} s  peak RSS {record['peak_rss_mb']:7.0f} MB", flush=True)
    ours = statistics.median(r["tokens_per_s"] for r in results["ours"])
    base = statistics.median(r["tokens_per_s"] for r in results["trainer"])
    peak = max(r["matmul_flops"] for r in results["ours"] + results["trainer"])
    params = results["ours"][0]["params"]
    tokens = results["ours"][0]["tokens"]
    print(f"\nfull fine-tuning SmolLM2-135M ({params / 1e6:.1f}M params), {args.samples} samples, {tokens} real "
          f"tokens, {args.batch} samples/step, {args.rounds} interleaved rounds, medians:")
    print(f"  HF Trainer + padding : {base:8.1f} tok/s  MFU {6 * params * base / peak:6.1%}  "
          f"peak RSS {max(r['peak_rss_mb'] for r in results['trainer']):.0f} MB")
    print(f"  labrador packed      : {ours:8.1f} tok/s  MFU {6 * params * ours / peak:6.1%}  "
          f"peak RSS {max(r['peak_rss_mb'] for r in results['ours']):.0f} MB")
    print(f"  speed-up {ours / base:.2f}x (target >= 1.5x); matmul peak {peak / 1e9:.1f} GFLOP/s (float32)")


if __name__ == "__main__":
    main()
