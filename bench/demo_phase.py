"""Train one demo training phase and score the checkpoint of every epoch on the demo's question sets.

The experiments of docs/demo.md ("What we changed and what it did") that look inside a phase: which epoch,
cross-entropy or KL on the self-replay rows. Uses a pipeline run's prepared data, e.g.

    .venv/bin/python bench/demo_phase.py --data RUN/data/knowledge_train_msgs_decontaminated.jsonl \
        --out /tmp/phase --epochs 3 --lr 1e-3              # replay rows as anchors (KL), as the pipeline does
    .venv/bin/python bench/demo_phase.py ... --no-anchor-kl  # replay rows trained as text (cross-entropy)

prints `samples_<N> heldout <correct> general <correct>` for each epoch's checkpoint.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from labrador.pipeline import stages
from labrador.pipeline.settings import PipelineSettings
from labrador.train import loop

DEMO = Path(__file__).resolve().parents[1] / "src" / "labrador" / "data" / "demo"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="A prepared knowledge or skills JSONL of a pipeline run.")
    parser.add_argument("--out", required=True)
    parser.add_argument("--start", default="smollm2-135m-instruct", help="Starting model (default: the base).")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--anchor-weight", type=float, default=1.0, help="Weight of the anchors' KL.")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-anchor-kl", action="store_true", help="Train the self-replay rows as text.")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data.jsonl"  # the replay rows marked (or not) as anchors, whatever the run wrote
    with data.open("w", encoding="utf-8") as target:
        for line in Path(args.data).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            row.pop("anchor", None)
            if not args.no_anchor_kl and (row.get("metadata") or {}).get("dataset") == "self_replay":
                row["anchor"] = True
            target.write(json.dumps(row) + "\n")
    settings = PipelineSettings.from_preset("cpu-laptop", {
        "taxonomy_path": Path("."), "run_dir": out, "heldout": DEMO / "heldout.yaml",
        "general_check": DEMO / "general_check.yaml", "skip_judge": True,
        "knowledge": {"num_epochs": args.epochs, "learning_rate": args.lr},
        "train": {"effective_batch_size": args.batch_size, "anchor_weight": args.anchor_weight, "seed": args.seed}})
    loop._prune = lambda *a, **k: None  # keep every epoch's checkpoint (the trainer keeps only best and newest)
    options = settings.train_options("knowledge", args.start, str(data))
    stages.train_phase(options.model_copy(update={"ckpt_output_dir": str(out / "ckpt")}), "knowledge")
    for checkpoint in sorted((out / "ckpt" / "hf_format").iterdir(), key=lambda p: int(p.name.split("_")[1])):
        gguf = stages.convert(settings, str(checkpoint), checkpoint / "gguf")["gguf"]
        scores = stages.evaluate(settings, gguf, "eval", checkpoint)
        print(checkpoint.name, "heldout", scores["heldout"]["correct"], "general", scores["general"]["correct"],
              flush=True)


if __name__ == "__main__":
    main()
