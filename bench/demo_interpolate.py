"""Weight interpolation between the base and a tuned checkpoint, scored on the demo's question sets.

base + alpha * (tuned - base) for each alpha (WiSE-FT style): does moving back towards the base keep the new
facts while restoring general answers? (docs/demo.md: no, it trades one held-out answer for two general ones.)

    .venv/bin/python bench/demo_interpolate.py RUN/train/skills-*/hf_format/samples_* --alphas 1,0.8,0.6
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from labrador.pipeline import stages
from labrador.pipeline.settings import PipelineSettings
from labrador.train.student import hf_dir_for, resolve_student

DEMO = Path(__file__).resolve().parents[1] / "src" / "labrador" / "data" / "demo"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tuned", help="A tuned Hugging Face checkpoint of the embedded student.")
    parser.add_argument("--alphas", default="1,0.8,0.6")
    args = parser.parse_args()
    from safetensors.torch import load_file, save_file

    base = load_file(str(hf_dir_for(resolve_student(None)) / "model.safetensors"))
    tuned = load_file(str(Path(args.tuned) / "model.safetensors"))
    work = Path(tempfile.mkdtemp(prefix="labrador-interpolate-"))
    settings = PipelineSettings.from_preset("cpu-laptop", {
        "taxonomy_path": Path("."), "run_dir": work, "heldout": DEMO / "heldout.yaml",
        "general_check": DEMO / "general_check.yaml", "skip_judge": True})
    try:
        for alpha in (float(a) for a in args.alphas.split(",")):
            target = work / f"alpha-{alpha}"
            shutil.copytree(args.tuned, target)
            mixed = {k: base[k] + alpha * (v - base[k]) if k in base else v for k, v in tuned.items()}
            save_file(mixed, str(target / "model.safetensors"), metadata={"format": "pt"})
            gguf = stages.convert(settings, str(target), target / "gguf")["gguf"]
            scores = stages.evaluate(settings, gguf, "eval", target)
            print(f"alpha {alpha}: heldout {scores['heldout']['correct']} general {scores['general']['correct']}",
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
