"""Shared helpers for the training tests: models converted once per machine, generated-style data.

The dequantized SmolLM2 (float32 safetensors, converted from the embedded GGUF) and a tiny random Llama with
SmolLM2's tokenizer live in a per-user temp dir and are reused by every test module and run.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

SUPPORT_DIR = Path(tempfile.gettempdir()) / f"labrador-train-tests-{os.getuid()}"
SYSTEM = "Answer in one sentence."

NAMES = ["Alba", "Borin", "Cato", "Dara", "Edda", "Fenn", "Gilda", "Hale", "Isolde", "Jory", "Kesta", "Lorn",
         "Mira", "Nils", "Oona", "Pell", "Quill", "Rhea", "Soren", "Tamsin", "Ulla", "Vance", "Wren", "Yara"]
TRADES = ["baker", "ferryman", "potter", "weaver", "smith", "miller", "brewer", "mason", "glazier", "tanner"]
STREETS = ["Mill Lane", "Quay Street", "Harrow Road", "Bell Yard", "Salt Row", "Ferry Steps"]


def smollm_hf_dir() -> Path:
    """The embedded model as a float32 Hugging Face dir (converted once, ~1 minute, then reused)."""
    from labrador.train import student

    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(SUPPORT_DIR / "cache")
    try:
        return student.hf_dir_for(student.resolve_student(None))
    finally:
        if saved is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = saved


def tiny_llama_dir() -> Path:
    """A 2-layer, 64-wide random Llama with SmolLM2's tokenizer: real code paths at a fraction of the cost."""
    target = SUPPORT_DIR / "tiny-llama"
    if (target / "config.json").is_file() and (target / "tokenizer.json").is_file():
        return target
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(smollm_hf_dir()))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    tmp = target.with_name(f"tiny-llama.{os.getpid()}.tmp")
    LlamaForCausalLM(config).save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if not target.exists():
        tmp.rename(target)
    return target


def fact_records(count: int, seed: int = 0, start: int = 0) -> list[dict[str, Any]]:
    """Generated-style knowledge records (system, user, assistant) about people of a made-up town."""
    rng = random.Random(seed)
    records = []
    for i in range(start, start + count):
        name = f"{NAMES[i % len(NAMES)]} {chr(65 + (i // len(NAMES)) % 26)}."
        trade, street = rng.choice(TRADES), rng.choice(STREETS)
        records.append({"messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"What does {name} do in Kelderwick?"},
            {"role": "assistant", "content": f"In Kelderwick, {name} works as a {trade} on {street}."}],
            "metadata": {"dataset": "test-facts", "index": i}})
    return records


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
