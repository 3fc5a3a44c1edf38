"""The pipeline's make-like logic: stamps, reuse, partial re-runs after an edit or a crash (fake stages)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from labrador.pipeline.runner import StageFunctions, run_pipeline
from labrador.pipeline.settings import PipelineSettings
from labrador.pipeline.stamps import StampStore, fingerprint


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

    def train_phase(self, s: PipelineSettings, phase: str, data: str, start: str, ckpt: Path) -> dict[str, Any]:
        self._note(f"train_{phase}")
        ckpt.mkdir(parents=True, exist_ok=True)
        return {"checkpoint": str(ckpt), "metrics": None, "start": start}

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
    settings.skills_epochs += 1
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


def test_prepare_data_drops_contaminated_rows_and_adds_closed_book_and_seed_rows(tmp_path: Path) -> None:
    from labrador.pipeline.stages import prepare_data

    heldout = tmp_path / "heldout.yaml"
    heldout.write_text("questions:\n  - question: Who founded the town of Kelderwick?\n    key_facts: [Penhallow]\n")
    system = {"role": "system", "content": "sys"}

    def row(user: str, answer: str, dataset: str = "knowledge_p07") -> dict[str, Any]:
        return {"messages": [system, {"role": "user", "content": user}, {"role": "assistant", "content": answer}],
                "metadata": {"leaf_kind": "knowledge", "dataset": dataset}, "unmask": True}

    doc = "Kelderwick was founded in 1742 by Aldous Penhallow, a ferryman."
    rows = [row(f"{doc}\n\nWho founded the town of Kelderwick?", "Aldous Penhallow."),  # leaks a held-out question
            row(f"{doc}\n\nWhat was Aldous Penhallow's job?", "Aldous Penhallow was a ferryman."),  # grounded
            row(f"{doc}\n\nWhen was the Great Flood?", "The Great Flood was in 2020."),  # invented: no copy
            # the question names 2020 but the document does not: the question is not the source
            row(f"{doc}\n\nWhen was the Great Flood of 2020?", "The Great Flood of 2020 was in 2020."),
            # every name is in the document, the claim is not (a sentence no document sentence supports)
            row(f"{doc}\n\nHow did Kelderwick grow?", "Kelderwick grew by trade under a farmer named Aldous Penhallow.")]
    generated = tmp_path / "knowledge_train_msgs_x.jsonl"
    generated.write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = PipelineSettings(taxonomy_path=tmp_path, run_dir=tmp_path, heldout=heldout, self_replay=False)
    leaves = [{"rel_path": "knowledge/k/qna.yaml", "kind": "knowledge", "qna_path": str(tmp_path / "qna.yaml"),
               "seeds": ["In what year was Kelderwick founded?"], "seed_qa": [["In what year?", "In 1742."]]}]
    out = prepare_data(settings, {"knowledge": [str(generated)], "skills": []}, leaves, tmp_path / "data")
    assert [r["heldout"] for r in out["removed"]] == ["Who founded the town of Kelderwick?"]
    kept = [json.loads(line) for line in Path(out["files"]["knowledge"]).read_text().splitlines()]
    users = [r["messages"][1]["content"] for r in kept]
    # the invented Great Flood year is dropped (grounded_only); the grounded Q&A also gets a closed-book copy
    assert users == [f"{doc}\n\nWhat was Aldous Penhallow's job?", "What was Aldous Penhallow's job?", "In what year?"]
    assert out["knowledge_ungrounded_dropped"] == 3
    assert out["knowledge_closed_book"] == 1 and out["knowledge_seed_qa"] == 1 and out["knowledge_rows"] == 3
    assert kept[-1]["messages"][0] == system and kept[1]["unmask"] is False

    leaves[0]["seeds"].append("Who founded the town of Kelderwick?")  # a held-out question among the seeds
    with pytest.raises(Exception, match="Held-out questions must be unseen"):
        prepare_data(settings, {"knowledge": [str(generated)], "skills": []}, leaves, tmp_path / "data")


def test_decontaminator_catches_copies_and_rewordings_not_topics() -> None:
    from labrador.pipeline.decontam import Decontaminator

    checker = Decontaminator(["Who founded the town of Kelderwick?",
                              "In which year did the Lantern Tide Festival take place for the first time?"])
    assert checker.match("who FOUNDED the town of kelderwick") is not None
    assert checker.match("Document:\nsome text.\n\nWho founded the town of Kelderwick, and when?") is not None
    assert checker.match("In which year did the Lantern Tide Festival happen for the first time?") is not None
    assert checker.match("The village is a small part of the town of Kelderwick.") is None
    assert checker.match("In which year was the Copperbell Bridge built?") is None


def test_another_seed_redoes_generation_and_training_not_base_eval(
        setup: tuple[PipelineSettings, FakeStages], monkeypatch: pytest.MonkeyPatch) -> None:
    settings, fake = setup
    run_pipeline(settings, fake.functions(), log=lambda _: None)
    fake.calls.clear()
    settings.seed = 7
    run_pipeline(settings, fake.functions(), log=lambda _: None)
    assert fake.calls == [n for n in ALL if n != "evaluate_base"]
    # `ilab pipeline run --seed` and `python -m labrador.demo --seed` set it
    from labrador import demo

    assert _settings_from_cli(monkeypatch, settings, "--seed", "5").seed == 5
    assert demo.demo_settings(settings.run_dir, 1, 9).seed == 9  # type: ignore[attr-defined]
    assert demo.demo_settings(settings.run_dir, 1).seed == 42  # type: ignore[attr-defined]


def test_anchor_weight_redoes_training_only_and_the_replay_prompts_count_by_content(
        setup: tuple[PipelineSettings, FakeStages], monkeypatch: pytest.MonkeyPatch) -> None:
    settings, fake = setup
    run_pipeline(settings, fake.functions(), log=lambda _: None)
    fake.calls.clear()
    settings.anchor_weight = 2.0
    run_pipeline(settings, fake.functions(), log=lambda _: None)
    assert fake.calls == ["train_knowledge", "train_skills", "convert", "evaluate_tuned"]
    # a prompt file is part of the data's inputs by its content (the bundled one too, when none is given)
    from labrador.pipeline.replay import bundled_prompts

    assert settings.data_inputs()["replay"]["prompts"] == bundled_prompts()
    prompts = settings.run_dir.parent / "prompts.yaml"
    prompts.write_text("version: 1\nprompts: [Name a colour.]\n", encoding="utf-8")
    settings.replay_prompts = prompts
    run_pipeline(settings, fake.functions(), log=lambda _: None)
    fake.calls.clear()
    prompts.write_text("version: 1\nprompts: [Name a fruit.]\n", encoding="utf-8")
    run_pipeline(settings, fake.functions(), log=lambda _: None)
    assert fake.calls == [n for n in ALL if n not in ("generate", "evaluate_base")]
    # `ilab pipeline run --anchor-weight` sets it
    assert _settings_from_cli(monkeypatch, settings, "--anchor-weight", "3").anchor_weight == 3.0


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
