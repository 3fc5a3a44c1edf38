"""The key-facts benchmark without a model: scorer, question files, answering, judging, results and the
pipeline's evaluate stage (fake clients stand in for the model)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from labrador.errors import ConfigError, DataError
from labrador.eval.calls import Model
from labrador.eval.judge import Judge
from labrador.eval.keyfacts import accuracy, answer_questions, judge_answers, normalize, score_answer
from labrador.eval.questions import load_question_set
from labrador.eval.runner import EvalOptions, check_options, run_evaluation
from labrador.llm import Completion, SamplingParams
from labrador.sdg.output import SYSTEM_PROMPT

QUESTIONS = """\
version: 1
leaf: knowledge/astronomy/moons
questions:
  - question: Which planet does the moon Titan orbit?
    answer: Titan orbits Saturn.
    key_facts: [Saturn]
  - question: How many moons does Mars have?
    key_facts: [["2", two], Phobos]
"""


class ScriptedClient:
    """Answers from a question -> reply table; records every request."""

    model_name = "scripted"

    def __init__(self, replies: dict[str, str]) -> None:
        self.replies, self.requests, self.closed = replies, [], False

    def chat(self, messages: list[dict], params: SamplingParams) -> Completion:
        self.requests.append((messages, params))
        return Completion([self.replies.get(messages[-1]["content"], "Rating: [[4]]")])

    def close(self) -> None:
        self.closed = True


def _write(tmp_path: Path, text: str = QUESTIONS) -> Path:
    path = tmp_path / "questions.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_keyfacts_normalisation_and_synonyms() -> None:
    assert normalize("Saint-Aubry-sur-Loue, 1,250 Zürich!") == "saint aubry sur loue 1250 zurich"
    answer = "The bridge opened in 1742, built by a ferry man; it is 8,450 m long."
    assert score_answer(answer, ["1742", ["ferryman", "ferry man"], "8450", "Dunmere"]) == 0.75
    assert score_answer("concatenate", ["cat"]) == 0.0  # whole words only
    assert score_answer("in 18.42 s", ["18.42"]) == 1.0
    assert score_answer("anything", []) == 1.0


def test_question_file_is_read_with_synonyms_and_references(tmp_path: Path) -> None:
    qs = load_question_set(_write(tmp_path))
    assert qs.leaf == "knowledge/astronomy/moons" and len(qs.questions) == 2
    assert qs.questions[0].answer == "Titan orbits Saturn." and qs.questions[1].answer is None
    assert qs.questions[1].key_facts == [["2", "two"], "Phobos"]


@pytest.mark.parametrize(("text", "message"), [
    ("questions: [\n", "not valid YAML"),
    ("version: 1\n", "non-empty 'questions' list"),
    ("questions:\n  - question: Why?\n", "question 1: 'key_facts' must be a non-empty list"),
    ("questions:\n  - key_facts: [a]\n", "question 1: each item needs a non-empty 'question'"),
    ("questions:\n  - {question: Why, key_facts: [[]]}\n", "a key fact must be a non-empty text"),
    ("questions:\n  - {question: Why, key_facts: [a]}\n  - {question: why, key_facts: [b]}\n", "appears twice"),
])
def test_bad_question_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(DataError, match=message) as err:
        load_question_set(path)
    assert str(path) in str(err.value)


def test_missing_question_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="question file not found"):
        load_question_set(tmp_path / "nope.yaml")


def test_answers_are_greedy_with_the_training_system_prompt_and_scored(tmp_path: Path) -> None:
    questions = load_question_set(_write(tmp_path)).questions
    client = ScriptedClient({questions[0].question: "  It orbits Saturn. ",
                             questions[1].question: "Mars has two moons, Deimos and another one."})
    rows = answer_questions(Model("m", client, "m"), questions, max_tokens=32)
    assert rows == [{"question": questions[0].question, "answer": "It orbits Saturn.", "key_facts": ["Saturn"],
                     "score": 1.0},
                    {"question": questions[1].question, "answer": "Mars has two moons, Deimos and another one.",
                     "key_facts": [["2", "two"], "Phobos"], "score": 0.5}]
    for messages, params in client.requests:
        assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT} and messages[1]["role"] == "user"
        assert params.temperature == 0.0 and params.max_tokens == 32
    assert accuracy(rows) == {"correct": 1, "total": 2, "accuracy": 0.5}


def test_judge_rates_only_questions_with_a_reference(tmp_path: Path) -> None:
    questions = load_question_set(_write(tmp_path)).questions
    rows = [{"question": q.question, "answer": "", "key_facts": q.key_facts, "score": 0.0} for q in questions]
    judge = ScriptedClient({})
    summary, items = judge_answers(Judge(Model("the-judge", judge, "fp"), max_tokens=96), questions, rows)
    assert summary == {"mean": 4.0, "rated": 1, "total": 1, "judge": "the-judge"}
    assert items[0]["user_input"] == questions[0].question and items[0]["response"] == "(no answer)"
    assert "Titan orbits Saturn." in judge.requests[0][0][1]["content"] and judge.requests[0][1].max_tokens == 96


def test_keyfacts_options_are_checked_before_any_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="keyfacts needs --questions FILE"):
        check_options(EvalOptions(benchmark="keyfacts", model="m"))
    with pytest.raises(DataError, match="not valid YAML"):
        check_options(EvalOptions(benchmark="keyfacts", model="m", questions=_write(tmp_path, "questions: [\n")))
    check_options(EvalOptions(benchmark="keyfacts", model="m", questions=_write(tmp_path)))  # no judge needed


def _run(tmp_path: Path, clients: dict, **options) -> tuple[Path, dict, str]:
    console = Console(file=io.StringIO(), width=120)
    opts = EvalOptions(benchmark="keyfacts", model="tuned", questions=_write(tmp_path),
                       output_dir=tmp_path / "out", use_cache=False, max_tokens=16, **options)
    outcome = run_evaluation(opts, console, clients=clients)
    return outcome.results_dir, outcome.summary, console.file.getvalue()


def test_single_run_writes_summary_items_and_judgments(tmp_path: Path) -> None:
    client = ScriptedClient({"Which planet does the moon Titan orbit?": "Saturn."})
    results, summary, printed = _run(tmp_path, {"tuned": client, "judge": ScriptedClient({})}, judge_model="judge")
    assert summary["benchmark"] == "keyfacts" and summary["model"] == "tuned"
    assert (summary["correct"], summary["total"], summary["accuracy"], summary["mean_score"]) == (1, 2, 0.5, 0.5)
    assert summary["judge"]["rated"] == 1 and summary["settings"]["questions_file"].endswith("questions.yaml")
    assert json.loads((results / "summary.json").read_text()) == summary
    items = [json.loads(line) for line in (results / "items.jsonl").read_text().splitlines()]
    assert [i["score"] for i in items] == [1.0, 0.0]
    assert (results / "judgments.jsonl").is_file() and "keyfacts: tuned" in printed


def test_base_vs_tuned_comparison_has_a_chart(tmp_path: Path) -> None:
    tuned = ScriptedClient({"Which planet does the moon Titan orbit?": "Saturn."})
    base = ScriptedClient({})
    results, summary, _ = _run(tmp_path, {"tuned": tuned, "base": base}, base_model="base")
    assert summary["base"]["accuracy"] == 0.0 and summary["tuned"]["accuracy"] == 0.5 and summary["delta"] == 0.5
    assert summary["improvements"] == ["Which planet does the moon Titan orbit?"] and summary["regressions"] == []
    assert (results / "comparison.png").is_file()


def test_pipeline_evaluate_stage_writes_the_stage_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stage's file: {"summary", "details"} with indent 1; the judge is the candidate when they match."""
    from labrador.pipeline import stages
    from labrador.pipeline.settings import PipelineSettings

    client = ScriptedClient({"Which planet does the moon Titan orbit?": "Saturn, the ringed planet."})
    monkeypatch.setattr("labrador.llm.get_client", lambda model, **_: client)
    settings = PipelineSettings(taxonomy_path=tmp_path, run_dir=tmp_path / "run", heldout=_write(tmp_path),
                                teacher="student", eval_max_tokens=8)
    summary = stages.evaluate(settings, "student", "base", tmp_path / "eval")
    written = (tmp_path / "eval" / "base.json").read_text(encoding="utf-8")
    data = json.loads(written)
    assert written.startswith('{\n "summary": {\n  "model": "student",') and not written.endswith("\n")
    assert list(data["summary"]) == ["model", "heldout", "judge"] and list(data["details"]) == ["heldout", "judge"]
    assert data["summary"]["heldout"] == {"correct": 1, "total": 2, "accuracy": 0.5}
    assert data["summary"]["judge"] == {"mean": 4.0, "rated": 1, "total": 1, "judge": "student"}
    assert summary["details"] == str(tmp_path / "eval" / "base.json") and client.closed


def test_pipeline_judge_other_than_the_candidate_is_loaded_and_closed(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from labrador.pipeline import stages
    from labrador.pipeline.settings import PipelineSettings

    loaded: dict[str, ScriptedClient] = {}

    def get_client(model: str, **_: object) -> ScriptedClient:
        loaded[model] = ScriptedClient({})
        return loaded[model]

    monkeypatch.setattr("labrador.llm.get_client", get_client)
    settings = PipelineSettings(taxonomy_path=tmp_path, run_dir=tmp_path / "run", heldout=_write(tmp_path),
                                general_check=_write(tmp_path), judge="judge-model", eval_max_tokens=8)
    summary = stages.evaluate(settings, "student", "tuned", tmp_path / "eval")
    assert list(summary) == ["model", "heldout", "general", "judge", "details"]
    assert summary["judge"]["judge"] == "judge-model" and sorted(loaded) == ["judge-model", "student"]
    assert all(client.closed for client in loaded.values())
    assert len(loaded["judge-model"].requests) == 1 and len(loaded["student"].requests) == 4
