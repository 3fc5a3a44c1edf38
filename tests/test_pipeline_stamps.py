"""The pipeline's make-like logic: stamps, reuse, partial re-runs after an edit or a crash (fake stages)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, get_args

import pytest

from labrador.pipeline.runner import StageFunctions, run_pipeline
from labrador.pipeline.settings import PipelineSettings
from labrador.pipeline.stamps import StampStore, fingerprint
from labrador.sdg.context import GenerateOptions
from labrador.train.options import RUN_LOCAL, TrainOptions


def test_fingerprint_follows_file_content_not_name(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("same")
    b.write_text("same")
    assert fingerprint({"f": a}) == fingerprint({"f": b})
    b.write_text("changed")
    assert fingerprint({"f": a}) != fingerprint({"f": b})
    assert fingerprint({"x": 1, "y": [1, 2]}) == fingerprint({"y": [1, 2], "x": 1})


def test_store_reuses_fresh_stamp_and_reruns_on_change_missing_output_or_force(tmp_path: Path) -> None:
    calls: list[int] = []
    out = tmp_path / "out.txt"

    def action() -> dict[str, Any]:
        calls.append(1)
        out.write_text("x")
        return {"file": str(out)}

    store = StampStore(tmp_path, log=lambda _: None)
    first = store.run("s", {"v": 1}, action)
    second = store.run("s", {"v": 1}, action)
    assert len(calls) == 1 and first.token == second.token
    store.run("s", {"v": 2}, action)
    assert len(calls) == 2
    out.unlink()
    store.run("s", {"v": 2}, action)
    assert len(calls) == 3
    StampStore(tmp_path, log=lambda _: None, force={"s"}).run("s", {"v": 2}, action)
    assert len(calls) == 4
    (tmp_path / "stamps" / "s.json").write_text("{broken")
    store.run("s", {"v": 2}, action)
    assert len(calls) == 5


def test_failed_stage_writes_no_stamp(tmp_path: Path) -> None:
    store = StampStore(tmp_path, log=lambda _: None)

    def boom() -> dict[str, Any]:
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        store.run("s", {}, boom)
    assert store.load("s") is None and store.records[-1].status == "failed"


class FakeStages:
    """Stage functions that write small files and count their calls; `fail` makes one stage crash once."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail: str | None = None
        self.train_options: dict[str, TrainOptions] = {}

    def _note(self, name: str) -> None:
        self.calls.append(name)
        if self.fail == name:
            self.fail = None
            raise RuntimeError(f"{name} crashed")

    def validate(self, s: PipelineSettings) -> list[dict[str, Any]]:
        return [{"rel_path": p.relative_to(s.taxonomy_path).as_posix(), "kind": "knowledge", "qna_path": str(p),
                 "seeds": []} for p in sorted(s.taxonomy_path.rglob("qna.yaml"))]

    def generate(self, s: PipelineSettings, out: Path) -> dict[str, Any]:
        self._note("generate")
        out.mkdir(parents=True, exist_ok=True)
        (out / "data.jsonl").write_text("{}\n")
        return {"dataset_dir": str(out), "per_leaf": {}}

    def prepare_data(self, s: PipelineSettings, gen: dict, leaves: list, out: Path) -> dict[str, Any]:
        self._note("prepare_data")
        out.mkdir(parents=True, exist_ok=True)
        files = {}
        for kind in ("knowledge", "skills"):
            (out / f"{kind}.jsonl").write_text("{}\n")
            files[kind] = str(out / f"{kind}.jsonl")
        return {"files": files, "removed": [], "heldout_questions": 0}

    def train_phase(self, options: TrainOptions, phase: str) -> dict[str, Any]:
        self._note(f"train_{phase}")
        self.train_options[phase] = options
        Path(options.ckpt_output_dir).mkdir(parents=True, exist_ok=True)
        return {"checkpoint": options.ckpt_output_dir, "metrics": None, "start": options.model_path}

    def convert(self, s: PipelineSettings, checkpoint: str, out: Path) -> dict[str, Any]:
        self._note("convert")
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.gguf").write_text("gguf")
        return {"gguf": str(out / "model.gguf")}

    def evaluate(self, s: PipelineSettings, model: str, label: str, out: Path) -> dict[str, Any]:
        self._note(f"evaluate_{label}")
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{label}.json").write_text("{}")
        score = {"correct": 1, "total": 2, "accuracy": 0.5}
        return {"model": model, "heldout": score, "general": score, "details": str(out / f"{label}.json")}

    def functions(self) -> StageFunctions:
        return StageFunctions(self.validate, self.generate, self.prepare_data, self.train_phase, self.convert,
                              self.evaluate)


ALL = ["generate", "prepare_data", "train_knowledge", "train_skills", "convert", "evaluate_base", "evaluate_tuned"]


@pytest.fixture
def setup(tmp_path: Path) -> tuple[PipelineSettings, FakeStages]:
    taxonomy = tmp_path / "taxonomy"
    for leaf in ("knowledge/a", "compositional_skills/b"):
        (taxonomy / leaf).mkdir(parents=True)
        (taxonomy / leaf / "qna.yaml").write_text(f"leaf: {leaf}\n")
    return PipelineSettings(taxonomy_path=taxonomy, run_dir=tmp_path / "run", taxonomy_base="empty"), FakeStages()


def test_second_run_reuses_everything(setup: tuple[PipelineSettings, FakeStages]) -> None:
    settings, fake = setup
    first = run_pipeline(settings, fake.functions(), log=lambda _: None)
    assert fake.calls == ALL
    assert first.gguf and Path(first.gguf).is_file() and first.report and first.report.is_file()
    assert "held-out questions" in first.report.read_text()
    fake.calls.clear()
    second = run_pipeline(settings, fake.functions(), log=lambda _: None)
    assert fake.calls == []
    assert {r.name: r.status for r in second.records}["train_skills"] == "up to date"


def test_edit_to_one_leaf_redoes_downstream_but_not_base_eval(setup: tuple[PipelineSettings, FakeStages]) -> None:
    settings, fake = setup
    run_pipeline(settings, fake.functions(), log=lambda _: None)
    fake.calls.clear()
    (settings.taxonomy_path / "knowledge/a/document.md").write_text("new fact")
    run_pipeline(settings, fake.functions(), log=lambda _: None)
    assert fake.calls == [n for n in ALL if n != "evaluate_base"]


def test_skills_setting_change_keeps_data_and_knowledge_phase(setup: tuple[PipelineSettings, FakeStages]) -> None:
    settings, fake = setup
    run_pipeline(settings, fake.functions(), log=lambda _: None)
    fake.calls.clear()
    settings.skills.num_epochs = settings.train.num_epochs + 1
    run_pipeline(settings, fake.functions(), log=lambda _: None)
    assert fake.calls == ["train_skills", "convert", "evaluate_tuned"]


def test_crash_then_rerun_resumes_at_the_failed_stage(setup: tuple[PipelineSettings, FakeStages]) -> None:
    settings, fake = setup
    fake.fail = "train_skills"
    with pytest.raises(RuntimeError, match="train_skills crashed"):
        run_pipeline(settings, fake.functions(), log=lambda _: None)
    assert fake.calls == ["generate", "prepare_data", "train_knowledge", "train_skills"]
    fake.calls.clear()
    run_pipeline(settings, fake.functions(), log=lambda _: None)
    assert fake.calls == ["train_skills", "convert", "evaluate_base", "evaluate_tuned"]


def test_regenerated_upstream_output_invalidates_downstream(setup: tuple[PipelineSettings, FakeStages]) -> None:
    settings, fake = setup
    first = run_pipeline(settings, fake.functions(), log=lambda _: None)
    shutil.rmtree(first.outputs["generate"]["dataset_dir"])  # same inputs, but the output is gone
    fake.calls.clear()
    run_pipeline(settings, fake.functions(), log=lambda _: None)
    assert fake.calls == [n for n in ALL if n != "evaluate_base"]
    stamp = json.loads((settings.run_dir / "stamps" / "generate.json").read_text())
    assert stamp["wall_s"] >= 0 and stamp["files"] == [first.outputs["generate"]["dataset_dir"]]


def test_skills_phase_starts_from_knowledge_checkpoint(setup: tuple[PipelineSettings, FakeStages]) -> None:
    settings, fake = setup
    result = run_pipeline(settings, fake.functions(), log=lambda _: None)
    assert result.outputs["train_knowledge"]["start"] == settings.student
    assert result.outputs["train_skills"]["start"] == result.outputs["train_knowledge"]["checkpoint"]


def test_stop_after_ends_early(setup: tuple[PipelineSettings, FakeStages]) -> None:
    settings, fake = setup
    run_pipeline(settings, fake.functions(), log=lambda _: None, stop_after="prepare_data")
    assert fake.calls == ["generate", "prepare_data"]


def test_another_seed_redoes_generation_and_training_not_base_eval(
        setup: tuple[PipelineSettings, FakeStages], monkeypatch: pytest.MonkeyPatch) -> None:
    settings, fake = setup
    run_pipeline(settings, fake.functions(), log=lambda _: None)
    fake.calls.clear()
    settings.generate.seed = settings.train.seed = 7
    run_pipeline(settings, fake.functions(), log=lambda _: None)
    assert fake.calls == [n for n in ALL if n != "evaluate_base"]
    # `ilab pipeline run --seed` and `python -m labrador.demo --seed` set all three (the mixes' choices too)
    from labrador import demo

    cli = _settings_from_cli(monkeypatch, settings, "--seed", "5")
    assert (cli.generate.seed, cli.prepare.seed, cli.train.seed) == (5, 5, 5)
    seeded, default = demo.demo_settings(settings.run_dir, 1, 9), demo.demo_settings(settings.run_dir, 1)
    assert (seeded.generate.seed, seeded.prepare.seed, seeded.train.seed) == (9, 9, 9)
    assert (default.generate.seed, default.prepare.seed, default.train.seed) == (42, 42, 42)


def test_anchor_weight_redoes_training_only_and_the_replay_prompts_count_by_content(
        setup: tuple[PipelineSettings, FakeStages], monkeypatch: pytest.MonkeyPatch) -> None:
    settings, fake = setup
    run_pipeline(settings, fake.functions(), log=lambda _: None)
    fake.calls.clear()
    settings.train.anchor_weight = 2.0
    run_pipeline(settings, fake.functions(), log=lambda _: None)
    assert fake.calls == ["train_knowledge", "train_skills", "convert", "evaluate_tuned"]
    # a prompt file is part of the data's inputs by its content (the bundled one too, when none is given)
    from labrador.prepare.replay import bundled_prompts

    assert settings.data_inputs()["prompts"] == bundled_prompts()
    prompts = settings.run_dir.parent / "prompts.yaml"
    prompts.write_text("version: 1\nprompts: [Name a colour.]\n", encoding="utf-8")
    settings.prepare = settings.prepare.model_copy(update={"replay_prompts": prompts})
    run_pipeline(settings, fake.functions(), log=lambda _: None)
    fake.calls.clear()
    prompts.write_text("version: 1\nprompts: [Name a fruit.]\n", encoding="utf-8")
    run_pipeline(settings, fake.functions(), log=lambda _: None)
    assert fake.calls == [n for n in ALL if n not in ("generate", "evaluate_base")]
    # `ilab pipeline run --anchor-weight` sets it
    assert _settings_from_cli(monkeypatch, settings, "--anchor-weight", "3").train.anchor_weight == 3.0


def _settings_from_cli(monkeypatch: pytest.MonkeyPatch, settings: PipelineSettings, *args: str) -> PipelineSettings:
    """The settings `ilab pipeline run ARGS` hands to the runner (which stops there)."""
    from click.testing import CliRunner

    from labrador.cli.main import cli

    seen: list[PipelineSettings] = []

    def record(s: PipelineSettings, **_: Any) -> None:
        seen.append(s)
        raise RuntimeError("stop here: the settings are all this test needs")

    monkeypatch.setattr("labrador.pipeline.runner.run_pipeline", record)
    result = CliRunner().invoke(cli, ["pipeline", "run", "--taxonomy-path", str(settings.taxonomy_path),
                                      "--run-dir", str(settings.run_dir), *args])
    assert len(seen) == 1, result.output
    return seen[0]


def _changed(name: str, value: Any) -> Any:
    """Another valid value of a TrainOptions field (the fake stages never validate it)."""
    special = {"lora_quantize": 4, "held_out_fraction": 0.3, "phase1_effective_batch_size": 3,
               "phase2_effective_batch_size": 3, "max_steps": 5}
    choices = get_args(TrainOptions.model_fields[name].annotation)  # a Literal's values
    if name in special:
        return special[name]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value * 2 + 1
    if isinstance(value, list):
        return [*value, "extra"]
    return next((c for c in choices if c != value), f"{value}-other")


def test_every_training_setting_is_in_the_training_stamp(setup: tuple[PipelineSettings, FakeStages]) -> None:
    """Any TrainOptions field that can change what training computes changes the phase's stamp key, so the
    phase re-runs (the stamp hashes the very options the phase is run with)."""
    settings, fake = setup

    def key() -> str:
        return json.loads((settings.run_dir / "stamps" / "train_knowledge.json").read_text())["key"]

    run_pipeline(settings, fake.functions(), log=lambda _: None, stop_after="train_knowledge")
    keys = {key()}
    # the pipeline sets these itself: the model (the student, then the knowledge checkpoint) and the strategy
    for name in sorted(set(TrainOptions.model_fields) - RUN_LOCAL - {"model_path", "strategy"}):
        base = settings.train.model_copy()
        settings.train = base.model_copy(update={name: _changed(name, getattr(base, name))})
        fake.calls.clear()
        run_pipeline(settings, fake.functions(), log=lambda _: None, stop_after="train_knowledge")
        assert fake.calls == ["train_knowledge", "train_skills"], name
        assert getattr(fake.train_options["knowledge"], name) == getattr(settings.train, name), name
        assert key() not in keys, name
        keys.add(key())
        settings.train = base


def test_the_cpu_laptop_preset_gives_the_demo_its_tuned_settings(tmp_path: Path) -> None:
    """The options the demo's stages receive are the ones the demo was tuned with (written out here on purpose)."""
    from labrador import demo

    settings = demo.demo_settings(tmp_path, threads=2)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    common = {"pipeline": "simple", "strategy": "single", "effective_batch_size": 2, "max_seq_len": 448,
              "max_batch_len": 2048, "warmup_steps": 2, "lora_rank": 16, "lora_alpha": 32, "seed": 42,
              "lora_target_modules": targets, "anchor_weight": 1.0, "held_out_fraction": 0.0}
    for phase, epochs, lr in (("knowledge", 3, 1e-3), ("skills", 1, 1e-4)):
        assert settings.train_options(phase, "start", "data.jsonl") == TrainOptions(
            model_path="start", data_path="data.jsonl", num_epochs=epochs, learning_rate=lr, **common)
    assert settings.generate == GenerateOptions(scale_factor=2, max_num_tokens=192, chunk_size=300, num_workers=2,
                                                seed=42)
    prepare = settings.prepare_options()
    assert (prepare.grounded_only, prepare.closed_book, prepare.train_on_seeds, prepare.self_replay,
            prepare.replay_prompts, prepare.replay_max_tokens, prepare.replay_kl) == (True, True, True, True,
                                                                                     None, 64, True)
    assert (settings.gguf_outtype, settings.eval_max_tokens, settings.threads) == ("f16", 64, 2)


def test_pipeline_run_uses_the_cpu_laptop_preset_unless_told(
        setup: tuple[PipelineSettings, FakeStages], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from labrador.errors import ConfigError
    from labrador.presets import load_preset

    settings, _ = setup
    assert _settings_from_cli(monkeypatch, settings).train.max_seq_len == 448
    assert _settings_from_cli(monkeypatch, settings, "--max-seq-len", "512").train.max_seq_len == 512
    assert _settings_from_cli(monkeypatch, settings, "--preset", "none").train == TrainOptions()
    mine = tmp_path / "mine.yaml"
    mine.write_text("knowledge:\n  num_epochs: 5\n", encoding="utf-8")
    assert _settings_from_cli(monkeypatch, settings, "--preset", str(mine)).knowledge.num_epochs == 5
    with pytest.raises(ConfigError, match="Unknown preset 'nope'"):
        load_preset("nope")
