"""`ilab pipeline run`: validate -> generate -> prepare data (decontaminate) -> train (knowledge, skills) -> convert -> evaluate.

Run directory layout (`settings.run_dir`):
  stamps/<stage>.json        make-like stamps (see `labrador.pipeline.stamps`)
  datasets/<run-id>/         generation output (sdg)
  data/                      decontaminated training files
  train/<phase>-<key>/       training runs; the key part makes a changed input start a fresh run, while a
                             crashed run with the same inputs resumes from its checkpoints
  model/<key>/model.gguf     the tuned model for llama.cpp
  eval/                      base.json, tuned.json: every answer and its score
  report.md, *.png           the summary report
Stage functions are injected (`StageFunctions`) so the up-to-date logic is testable with fakes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labrador.files import atomic_write_text
from labrador.pipeline import stages
from labrador.pipeline.report import write_report
from labrador.pipeline.settings import PHASES, PipelineSettings
from labrador.pipeline.stamps import StampStore, fingerprint


@dataclass
class StageFunctions:
    validate: Callable[..., list[dict[str, Any]]] = stages.validate
    generate: Callable[..., dict[str, Any]] = stages.generate
    prepare_data: Callable[..., dict[str, Any]] = stages.prepare_data
    train_phase: Callable[..., dict[str, Any]] = stages.train_phase
    convert: Callable[..., dict[str, Any]] = stages.convert
    evaluate: Callable[..., dict[str, Any]] = stages.evaluate
    report: Callable[..., Path] = write_report


@dataclass
class PipelineResult:
    run_dir: Path
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: list[Any] = field(default_factory=list)
    report: Path | None = None

    @property
    def gguf(self) -> str | None:
        return self.outputs.get("convert", {}).get("gguf")

    @property
    def checkpoint(self) -> str | None:
        return self.outputs.get("train_skills", {}).get("checkpoint")


def _leaf_inputs(leaves: list[dict[str, Any]]) -> dict[str, Any]:
    """Each changed leaf's directory content (qna.yaml and local documents), by leaf path."""
    return {leaf["rel_path"]: Path(leaf["qna_path"]).parent for leaf in leaves}


def run_pipeline(settings: PipelineSettings, functions: StageFunctions | None = None,
                 log: Callable[[str], None] = print, stop_after: str | None = None) -> PipelineResult:
    """Run every stage that is not up to date; `stop_after` ends the run after the named stage."""
    fn = functions or StageFunctions()
    run_dir = settings.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    store = StampStore(run_dir, log=log, force=set(settings.force))
    result = PipelineResult(run_dir, records=store.records)
    atomic_write_text(run_dir / "settings.json", settings.model_dump_json(indent=1))
    # Validation always runs: it is fast and it is what tells the later stages what changed.
    validate = store.run("validate", {"always": time.time()}, lambda: {"leaves": fn.validate(settings)})
    leaves = validate.outputs["leaves"]
    log("Changed leaves: " + ", ".join(f"{leaf['rel_path']} ({leaf['kind']})" for leaf in leaves))
    result.outputs["validate"] = validate.outputs
    if stop_after == "validate":
        return _finish(settings, fn, result)

    gen = store.run("generate", {"leaves": _leaf_inputs(leaves), **settings.generation_inputs()},
                    lambda: fn.generate(settings, run_dir / "datasets"),
                    files=lambda out: [out["dataset_dir"]])
    result.outputs["generate"] = gen.outputs
    dec = store.run("prepare_data", {"after": gen.token, "leaves": leaves, **settings.data_inputs()},
                    lambda: fn.prepare_data(settings, gen.outputs, leaves, run_dir / "data"),
                    files=lambda out: list(out["files"].values()))
    result.outputs["prepare_data"] = dec.outputs
    if stop_after in ("generate", "prepare_data"):
        return _finish(settings, fn, result)

    previous, after = settings.student, dec.token
    for phase in PHASES:
        options = settings.train_options(phase, previous, dec.outputs["files"][phase])
        inputs = {"after": after, "options": options.result_settings()}
        ckpt_dir = run_dir / "train" / f"{phase}-{fingerprint(inputs)[:10]}"
        options = options.model_copy(update={"ckpt_output_dir": str(ckpt_dir)})
        stamp = store.run(f"train_{phase}", inputs, lambda o=options, p=phase: fn.train_phase(o, p),
                          files=lambda out: [out["checkpoint"]])
        result.outputs[f"train_{phase}"] = stamp.outputs
        previous, after = stamp.outputs["checkpoint"], stamp.token
    if stop_after in ("train_knowledge", "train_skills", "train"):
        return _finish(settings, fn, result)

    tuned_model = previous
    try:
        conv = store.run("convert", {"after": after, "outtype": settings.gguf_outtype},
                         lambda: fn.convert(settings, previous, run_dir / "model" / after[:10]),
                         files=lambda out: [out["gguf"]])
        result.outputs["convert"] = conv.outputs
        tuned_model, after = conv.outputs["gguf"], conv.token
    except Exception as err:  # noqa: BLE001 - without GGUF the tuned HF checkpoint is still evaluated
        from labrador.errors import LabradorError

        if not isinstance(err, LabradorError):
            raise
        log(f"[convert] skipped: {err} Evaluating the Hugging Face checkpoint instead.")
    if stop_after == "convert":
        return _finish(settings, fn, result)

    eval_dir = run_dir / "eval"
    base = store.run("evaluate_base", {"model": settings.student, **settings.eval_inputs()},
                     lambda: fn.evaluate(settings, settings.student, "base", eval_dir),
                     files=lambda out: [out["details"]])
    tuned = store.run("evaluate_tuned", {"after": after, **settings.eval_inputs()},
                      lambda: fn.evaluate(settings, tuned_model, "tuned", eval_dir),
                      files=lambda out: [out["details"]])
    result.outputs["evaluate_base"], result.outputs["evaluate_tuned"] = base.outputs, tuned.outputs
    return _finish(settings, fn, result)


def _finish(settings: PipelineSettings, fn: StageFunctions, result: PipelineResult) -> PipelineResult:
    result.report = fn.report(settings, result)
    return result
