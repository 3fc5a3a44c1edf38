"""A training run: data, model, phases, the run directory and its journal (so --resume continues).

Run directory (`--ckpt-output-dir`):
  config.yaml      every setting used, plus resolved model/data paths and library versions
  run_state.json   the phase journal: status, checkpoints and best checkpoint of each phase
  metrics.jsonl    one line per optimizer step (and per held-out scoring)
  loss.png         drawn at the end
  <phase>/hf_format/samples_<N>/   standalone HF checkpoints (best and newest kept)
  <phase>/full_state/              resume state of the phase
With `--strategy single` the only phase is `train`; with `lab-multiphase` they are `phase1` (knowledge) and
`phase2` (skills, starting from phase 1's best checkpoint).
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labrador.errors import LabradorError, ModelError
from labrador.files import atomic_write_json, atomic_write_text
from labrador.train import batching, checkpoint, distributed, loop, student
from labrador.train import data as data_mod
from labrador.train.metrics import MetricsLog, plot_loss
from labrador.train.options import TrainOptions

logger = logging.getLogger(__name__)


@dataclass
class PhasePlan:
    name: str
    kind: str  # which files: "knowledge" or "skills"
    num_epochs: int
    learning_rate: float
    effective_batch_size: int


def plan_phases(opts: TrainOptions) -> list[PhasePlan]:
    if opts.strategy == "lab-multiphase":
        return [PhasePlan("phase1", "knowledge", opts.phase1_num_epochs, opts.phase1_learning_rate,
                          opts.phase1_effective_batch_size or opts.effective_batch_size),
                PhasePlan("phase2", "skills", opts.phase2_num_epochs, opts.phase2_learning_rate,
                          opts.phase2_effective_batch_size or opts.effective_batch_size)]
    return [PhasePlan("train", "skills", opts.num_epochs, opts.learning_rate, opts.effective_batch_size)]


def phase_files(opts: TrainOptions, plan: PhasePlan) -> list[Path]:
    path = Path(opts.data_path).expanduser().resolve()
    if path.is_file() and opts.strategy == "lab-multiphase":
        raise LabradorError("--strategy lab-multiphase needs a datasets directory with knowledge_train_msgs_*.jsonl "
                            "and skills_train_msgs_*.jsonl files, not a single file.")
    if path.is_dir() and plan.name == "train":
        try:
            return data_mod.find_data_files(path, "skills")
        except LabradorError:
            return data_mod.find_data_files(path, "knowledge")
    return data_mod.find_data_files(path, plan.kind)


def check_inputs(opts: TrainOptions) -> student.Student:
    """Everything that can be checked without torch: options, data files (every line), the model's files."""
    opts.validate()
    for plan in plan_phases(opts):
        for file in phase_files(opts, plan):
            data_mod.read_conversations(file)
    if opts.lora_quantize and distributed.local_gpu_count() == 0:
        raise ModelError(f"--lora-quantize {opts.lora_quantize} needs a CUDA GPU (bitsandbytes); this machine "
                         "has none. Drop the option to train LoRA in float32 on the CPU.")
    return student.resolve_student(opts.model_path)


def resumed_options(opts: TrainOptions) -> TrainOptions:
    """With --resume, the run's own settings (config.yaml) win, so the data order and schedule match; only
    --max-steps comes from the command line."""
    saved = Path(opts.ckpt_output_dir).expanduser() / "config.yaml"
    if not opts.resume or not saved.is_file():
        return opts
    import yaml

    restored = TrainOptions.from_dict(yaml.safe_load(saved.read_text(encoding="utf-8"))["options"])
    restored.resume, restored.max_steps = True, opts.max_steps
    return restored


def _write_journal(path: Path, journal: dict[str, Any], env: distributed.DistEnv) -> None:
    if env.is_main:
        atomic_write_json(path, journal, indent=1)


def _write_config(run_dir: Path, opts: TrainOptions, extra: dict[str, Any]) -> None:
    import torch
    import transformers
    import yaml

    record = {"options": opts.to_dict(), **extra,
              "versions": {"torch": str(torch.__version__), "transformers": str(transformers.__version__)}}
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(record, sort_keys=False))


def build_model(source: student.Student, opts: TrainOptions, env: distributed.DistEnv) -> Any:
    """Load the student (float32), add LoRA adapters for the simple pipeline, wrap for DDP/FSDP."""
    import torch

    torch.manual_seed(opts.seed)  # LoRA's random init is identical in every run and on every rank
    if opts.lora_quantize:
        model = _load_quantized(source, opts, env)
    else:
        from labrador.train import attention

        model = student.load_model(source, env.device,
                                   "flash_attention_2" if _has_flash_attn(env) else attention.register())
    if opts.lora:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=opts.lora_rank, lora_alpha=opts.lora_alpha, lora_dropout=opts.lora_dropout,
                            target_modules=list(opts.lora_target_modules), task_type="CAUSAL_LM")
        try:
            model = get_peft_model(model, config)
        except ValueError as err:
            raise LabradorError(f"LoRA could not be applied: {err}. Check --lora-target-modules against the "
                                "model's layer names (e.g. q_proj,v_proj for Llama-style models).") from None
    return distributed.wrap(model, env, opts.distributed_strategy)


def anchor_reference(model: Any, start: student.Student, opts: TrainOptions, env: distributed.DistEnv) -> Any:
    """A callable giving the phase's starting model's logits for a MicroBatch, for KL on anchor rows.

    LoRA: the same model with its adapters switched off (no extra memory). Full fine-tuning: a frozen second
    copy of the starting model. Under FSDP the weights are sharded and cannot be run outside the wrapper, so
    anchor rows fall back to cross-entropy on their text there (with a warning), as with --no-anchor-kl.
    `batching.summed_loss` calls it under torch.no_grad()."""
    if not opts.anchor_kl:
        return None
    inner = checkpoint.unwrap(model)
    if checkpoint.is_fsdp(model):
        if env.is_main:
            logger.warning("Anchor rows train with cross-entropy under FSDP (no unsharded reference model).")
        return None
    if hasattr(inner, "disable_adapter"):
        def adapters_off(batch: Any) -> Any:
            with inner.disable_adapter():
                return batching.kept_logits(inner, batch)
        return adapters_off
    frozen = student.load_model(start, env.device).eval().requires_grad_(False)
    return functools.partial(batching.kept_logits, frozen)


def _has_flash_attn(env: distributed.DistEnv) -> bool:
    import importlib.util

    return env.device.type == "cuda" and env.autocast_dtype is not None and \
        importlib.util.find_spec("flash_attn") is not None


def _load_quantized(source: student.Student, opts: TrainOptions, env: distributed.DistEnv) -> Any:
    import importlib.util

    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelError("--lora-quantize needs the 'bitsandbytes' package: pip install bitsandbytes.")
    from peft import prepare_model_for_kbit_training

    quant = BitsAndBytesConfig(load_in_8bit=opts.lora_quantize == 8, load_in_4bit=opts.lora_quantize == 4,
                               bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(str(student.hf_dir_for(source)), quantization_config=quant,
                                                 device_map={"": env.device})
    return prepare_model_for_kbit_training(model)


def run_training(opts: TrainOptions) -> dict[str, Any]:
    """Train (all phases); returns the journal with each phase's best checkpoint. Works under torchrun."""
    opts = resumed_options(opts)
    source = check_inputs(opts)
    env = distributed.setup(opts.dtype)
    try:
        return _run(opts, source, env)
    finally:
        distributed.teardown()


def _run(opts: TrainOptions, source: student.Student, env: distributed.DistEnv) -> dict[str, Any]:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress display is enough
    run_dir = Path(opts.ckpt_output_dir).expanduser().resolve()
    journal_path = run_dir / "run_state.json"
    plans = plan_phases(opts)
    journal = _open_journal(journal_path, opts, source, plans, env)
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        student.hf_dir_for(source)  # a GGUF is dequantized once, by rank 0, before the others read the copy
    distributed.barrier(env)
    tokenizer = student.load_tokenizer(source)
    metrics = MetricsLog(run_dir / "metrics.jsonl", env.is_main)
    if env.is_main:
        _write_config(run_dir, opts, {"model_dir": str(student.hf_dir_for(source)), "world_size": env.world_size,
                                      "device": str(env.device), "bf16": env.autocast_dtype is not None})
    current = source
    budget = opts.max_steps
    for plan in plans:
        state = journal["phases"][plan.name]
        if state["status"] == "done":
            current = student.Student(Path(state["best"]["path"]), "hf", plan.name)
            continue
        train, held_out = _phase_data(opts, plan, tokenizer, env)
        state.update(status="running", data=str(train.source), samples=len(train),
                     held_out=len(held_out) if held_out else 0, dropped_too_long=train.dropped_too_long,
                     dropped_no_loss=train.dropped_no_loss, start_from=str(current.path))
        _write_journal(journal_path, journal, env)
        spec = loop.PhaseSpec(plan.name, train, held_out, plan.num_epochs, plan.learning_rate,
                              plan.effective_batch_size, run_dir / plan.name if len(plans) > 1 else run_dir)
        result = _train_phase(current, tokenizer, spec, opts, env, metrics, budget)
        state.update(checkpoints=result.checkpoints, best=result.best, steps=result.global_step)
        if result.initial_held_out_loss is not None:
            state["initial_held_out_loss"] = result.initial_held_out_loss
        state["status"] = "done" if result.finished else "stopped"
        _write_journal(journal_path, journal, env)
        if not result.finished:
            break
        if budget is not None:
            budget -= result.global_step
        current = student.Student(Path(result.best["path"]), "hf", plan.name)
    if env.is_main:
        plot_loss(run_dir / "metrics.jsonl", run_dir / "loss.png")
    return journal


def _open_journal(path: Path, opts: TrainOptions, source: student.Student, plans: list[PhasePlan],
                  env: distributed.DistEnv) -> dict[str, Any]:
    """The run's phase journal: read back with --resume, else a new one (refusing to overwrite a run)."""
    journal = json.loads(path.read_text()) if opts.resume and path.is_file() else None
    if journal is None and env.is_main and path.exists():
        raise LabradorError(f"{path.parent} already holds a training run; pass --resume to continue it or choose "
                            "another --ckpt-output-dir.")
    if journal is None:
        journal = {"strategy": opts.strategy, "model": str(source.path),
                   "phases": {p.name: {"status": "pending"} for p in plans}}
    return journal


def _train_phase(start: student.Student, tokenizer: Any, spec: loop.PhaseSpec, opts: TrainOptions,
                 env: distributed.DistEnv, metrics: MetricsLog, budget: int | None) -> loop.PhaseResult:
    """Build the phase's model from its starting checkpoint (plus the anchor reference) and train it; the
    model is freed when this returns, before the next phase loads its own."""
    if opts.resume and checkpoint.load_progress(spec.out_dir / "full_state") is None:
        metrics.drop_after(spec.name, -1)  # killed before its first saved state: the phase starts over
    model = build_model(start, opts, env)
    if spec.data.anchors is not None:
        spec.reference = anchor_reference(model, start, opts, env)
    return loop.train_phase(model, tokenizer, spec, opts, env, metrics, opts.resume, budget)


def _phase_data(opts: TrainOptions, plan: PhasePlan, tokenizer: Any, env: distributed.DistEnv) -> tuple[Any, Any]:
    """Rank 0 tokenizes (and caches) first; the other ranks then read the cache."""
    files = phase_files(opts, plan)
    processed = None
    if env.is_main:
        processed = data_mod.process_files(files, tokenizer, opts.max_seq_len, opts.use_cache)
    distributed.barrier(env)
    if processed is None:
        processed = data_mod.process_files(files, tokenizer, opts.max_seq_len, opts.use_cache)
    return data_mod.split_held_out(processed, opts.held_out_fraction, opts.seed)
