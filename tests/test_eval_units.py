"""Unit tests of the evaluators' parsing, scoring arithmetic and bookkeeping (no model loaded)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from labrador.errors import ConfigError, DataError
from labrador.eval.branch import mc_tasks, mt_questions
from labrador.eval.calls import Model
from labrador.eval.dk_bench import check_responses, load_items
from labrador.eval.judge import Judgment, load_judge_prompts, parse_rating
from labrador.eval.mmlu_data import load_hf_mmlu, load_tasks_dir
from labrador.eval.mt_bench import MTQuestion, TurnResult, judge_messages, load_questions, summarize
from labrador.eval.mt_report import compare_per_leaf
from labrador.eval.multiple_choice import (
    MCQuestion,
    MCReport,
    build_prompt,
    few_shot_examples,
    pick_answer,
    score_question,
)
from labrador.eval.runner import EvalOptions, check_options
from labrador.llm import Completion, SamplingParams
from labrador.llm.cache import CallCache
from labrador.taxonomy.models import Leaf, QnA, SeedExample


@pytest.mark.parametrize(("text", "expected"), [
    ("Good answer. Rating: [[7]]", 7.0),
    ("Rating: [[8.5]] and later [[2]]", 8.5),
    ("no double brackets, but [6] here", 6.0),
    ("[[11]] is out of range", None),
    ("Rating: [[seven]]", None),
    ("", None),
])
def test_parse_rating_double_then_single_brackets(text: str, expected: float | None) -> None:
    assert parse_rating(text, 1, 10) == expected


def test_mmlu_prompt_layout_and_hand_computed_choice() -> None:
    shot = MCQuestion("1 + 1 = ?", ("1", "2", "3", "4"), 1, subject="elementary_math")
    q = MCQuestion("2 + 2 = ?", ("4", "5", "6", "7"), 0, subject="elementary_math")
    prompt = build_prompt(q, [shot])
    assert prompt == ("The following are multiple choice questions (with answers) about elementary math.\n\n"
                      "1 + 1 = ?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer: B\n\n"
                      "2 + 2 = ?\nA. 4\nB. 5\nC. 6\nD. 7\nAnswer:")
    # log p(letter | prompt), written down by hand: softmax over logits (2.0, 0.5, 1.0, -1.0) restricted to
    # the letters; the model's choice is the largest, A, which is the right answer.
    logits = [2.0, 0.5, 1.0, -1.0]
    log_z = math.log(sum(math.exp(v) for v in logits))
    table = {f" {letter}": v - log_z for letter, v in zip("ABCD", logits, strict=True)}
    seen = []

    def scorer(context: str, continuations: list[str]) -> list[float]:
        seen.append((context, continuations))
        return [table[c] for c in continuations]

    result = score_question(scorer, q, [shot])
    assert seen == [(prompt, [" A", " B", " C", " D"])]
    assert result.predicted == 0 and result.correct
    assert result.loglikelihoods[0] == pytest.approx(2.0 - log_z)
    assert pick_answer([-3.0, -1.0, -1.0, -2.0]) == 1  # the first of tied maxima


def test_mmlu_overall_is_mean_of_subject_accuracies() -> None:
    def fixed(answer: int):
        return lambda context, continuations: [0.0 if i == answer else -5.0 for i in range(len(continuations))]

    qs = [MCQuestion(f"q{i}", ("a", "b", "c", "d"), 0, subject="big") for i in range(3)]
    small = MCQuestion("s", ("a", "b", "c", "d"), 2, subject="small")
    report = MCReport([score_question(fixed(0), q) for q in qs] + [score_question(fixed(0), small)])
    assert report.subject_accuracy() == {"big": 1.0, "small": 0.0}
    assert report.overall == 0.5
    assert report.micro == 0.75


def test_tasks_dir_reads_jsonl_layouts_csv_and_dev_split(tmp_path: Path) -> None:
    (tmp_path / "astro_test.jsonl").write_text(
        '{"question": "Nearest star?", "choices": ["Sun", "Vega", "Sirius", "Rigel"], "answer": 0}\n'
        '{"question": "Red planet?", "A": "Venus", "B": "Mars", "C": "Jupiter", "D": "Saturn", "answer": "B"}\n')
    (tmp_path / "astro_dev.jsonl").write_text(
        '{"question": "Moon of Earth?", "choices": ["Moon", "Io", "Titan", "Europa"], "answer": "A"}\n')
    (tmp_path / "history_test.csv").write_text('"Year of X?",1900,1910,1920,1930,C\n')
    (tmp_path / "law.csv").write_text("question,A,B,C,D,answer\nQ?,a,b,c,d,3\n")
    data = load_tasks_dir(tmp_path)
    assert data.subjects() == ["astro", "history", "law"]
    assert [q.answer for q in data.test] == [0, 1, 2, 3]
    assert [q.question for q in data.dev] == ["Moon of Earth?"]
    assert len(data.limited(1).test) == 3


def test_few_shot_examples_come_from_dev_split_else_same_subject() -> None:
    test = [MCQuestion(f"t{i}", ("a", "b", "c", "d"), 0, subject="s") for i in range(4)]
    dev = [MCQuestion(f"d{i}", ("a", "b", "c", "d"), 0, subject="s") for i in range(6)]
    other = [MCQuestion("o", ("a", "b", "c", "d"), 0, subject="other")]
    assert [q.question for q in few_shot_examples(test[0], dev + other, test, 5)] == [f"d{i}" for i in range(5)]
    assert [q.question for q in few_shot_examples(test[1], [], test, 5)] == ["t0", "t2", "t3"]
    assert few_shot_examples(test[0], dev, test, 0) == []


def test_tasks_dir_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "x_test.jsonl"
    bad.write_text('{"question": "ok?", "choices": ["a", "b", "c", "d"], "answer": 1}\n'
                   '{"question": "bad?", "choices": ["a", "b", "c", "d"], "answer": "E"}\n')
    with pytest.raises(DataError, match=r"x_test.jsonl:2: the answer 'E'"):
        load_tasks_dir(tmp_path)
    bad.write_text('{"question": "three?", "choices": ["a", "b", "c"], "answer": 1}\n')
    with pytest.raises(DataError, match=r"x_test.jsonl:1: expected four non-empty choices"):
        load_tasks_dir(tmp_path)


def test_mmlu_without_tasks_dir_offline_says_what_to_do() -> None:
    with pytest.raises(DataError, match="HF_HUB_OFFLINE=1 forbids downloading it. Pass --tasks-dir"):
        load_hf_mmlu()  # conftest sets HF_HUB_OFFLINE=1 and an empty cache dir


def test_dk_bench_input_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "dk.jsonl"
    path.write_text('{"user_input": "Q?", "reference": "A"}\n{"user_input": "Q2?"}\n')
    with pytest.raises(DataError, match=r"dk.jsonl:2: 'reference' must be a non-empty string"):
        load_items(path)
    path.write_text('{"user_input": "Q?", "reference": "A"}\nnot json\n')
    with pytest.raises(DataError, match=r"dk.jsonl:2: not valid JSON"):
        load_items(path)
    path.write_text('{"user_input": "Q?", "reference": "A"}\n')
    with pytest.raises(DataError, match=r"dk.jsonl:1: no 'response' to judge and no --model"):
        check_responses(load_items(path), path)


def test_mt_bench_judge_prompt_choice(shared_dir: Path) -> None:
    data = shared_dir / "data" / "mt_bench"
    questions = load_questions(data)
    assert len(questions) == 80
    prompts = load_judge_prompts(data / "judge_prompts.jsonl")
    math_q = next(q for q in questions if q.category == "math")
    writing_q = next(q for q in questions if q.category == "writing")
    assert math_q.use_reference and math_q.reference and not writing_q.use_reference
    turn1 = judge_messages(prompts, math_q, ["ans one", "ans two"], 1)
    assert turn1[0]["content"] == prompts["single-math-v1"].system_prompt
    assert math_q.reference[0] in turn1[1]["content"] and "ans one" in turn1[1]["content"]
    turn2 = judge_messages(prompts, math_q, ["ans one", "ans two"], 2)
    assert turn2[0]["content"] == prompts["single-math-v1-multi-turn"].system_prompt
    assert math_q.reference[1] in turn2[1]["content"] and "ans two" in turn2[1]["content"]
    assert judge_messages(prompts, writing_q, ["a", "b"], 1)[1]["content"].startswith("[Instruction]")
    assert "[[rating]]" in judge_messages(prompts, writing_q, ["a", "b"], 2)[0]["content"]


def _turn(qid: str, group: str, score: float | None, error: str | None = None) -> TurnResult:
    q = MTQuestion(qid, "knowledge", ("q",), ("r",), True, group)
    return TurnResult(q, 1, "a", Judgment(score, "j", error))


def test_summary_counts_unparsable_and_failed_judgments() -> None:
    turns = [_turn("1", "x", 8.0), _turn("2", "x", None), _turn("3", "x", None, "boom"), _turn("4", "x", 4.0)]
    stats = summarize(turns)
    assert (stats["judgments"], stats["scored"], stats["unparsable"], stats["errors"]) == (4, 2, 1, 1)
    assert stats["overall"] == 6.0 and stats["error_rate"] == 0.5


def test_branch_comparison_per_leaf() -> None:
    base = [_turn("a1", "leaf/a", 3.0), _turn("a2", "leaf/a", 5.0), _turn("a3", "leaf/a", 5.0),
            _turn("b1", "leaf/b", None)]
    tuned = [_turn("a1", "leaf/a", 6.0), _turn("a2", "leaf/a", 4.0), _turn("a3", "leaf/a", 5.0),
             _turn("b1", "leaf/b", 7.0)]
    leaves = compare_per_leaf(base, tuned)
    a = leaves["leaf/a"]
    assert (a["improvements"], a["regressions"], a["ties"], a["unscored"]) == (1, 1, 1, 0)
    assert a["delta"] == pytest.approx(5.0 - 13.0 / 3)
    assert leaves["leaf/b"]["unscored"] == 1 and leaves["leaf/b"]["base"] is None


def _leaf(rel: str, kind: str, seeds: list[SeedExample]) -> Leaf:
    return Leaf(Path(rel) / "qna.yaml", rel, rel.split("/")[-1], kind, 3, "t", None, "d", None, seeds, None)


def test_branch_questions_from_leaves() -> None:
    knowledge = _leaf("knowledge/towns/k", "knowledge", [
        SeedExample(context="ctx", questions_and_answers=[QnA(f"Q{i}?", f"Answer {i}") for i in range(5)])])
    grounded = _leaf("compositional_skills/g", "grounded_skill",
                     [SeedExample(question="Who?", answer="Ann", context="Ann met Bo.")])
    mcs = mc_tasks([knowledge, grounded])
    assert len(mcs) == 5 and {q.subject for q in mcs} == {"knowledge_towns_k"}
    for q in mcs:
        assert len(set(q.choices)) == 4 and q.choices[q.answer] == f"Answer {q.question[1]}"
    assert mc_tasks([knowledge, grounded]) == mcs  # deterministic
    mts = mt_questions([knowledge, grounded])
    assert [q.group for q in mts] == ["knowledge/towns/k"] * 5 + ["compositional_skills/g"]
    assert mts[0].turns == ("Q0?",) and mts[0].reference == ("Answer 0",)  # knowledge: no context
    assert mts[-1].turns[0].startswith("Given the context below:\nAnn met Bo.")


class CountingClient:
    """Stands in for a model only to count calls through the cache."""

    model_name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def chat(self, messages, params: SamplingParams) -> Completion:
        self.calls += 1
        return Completion([f"reply {self.calls}"])


def test_call_cache_survives_reopen(tmp_path: Path) -> None:
    client = CountingClient()
    params = SamplingParams(max_tokens=5)
    msgs = [{"role": "user", "content": "hi"}]
    cache = CallCache(tmp_path / "c.sqlite")
    assert Model("m", client, "fp", cache).chat(msgs, params) == "reply 1"
    cache.close()
    cache = CallCache(tmp_path / "c.sqlite")  # a new process after a crash
    model = Model("m", client, "fp", cache)
    assert model.chat(msgs, params) == "reply 1" and client.calls == 1
    assert model.chat(msgs, SamplingParams(max_tokens=6)) == "reply 2"  # other params: a new call
    assert Model("m", client, "other-fp", cache).chat(msgs, params) == "reply 3"


@pytest.mark.parametrize("benchmark", ["mt_bench", "mt_bench_branch", "dk_bench"])
def test_missing_judge_is_an_error_before_any_work(benchmark: str) -> None:
    with pytest.raises(ConfigError, match="needs a judge model"):
        check_options(EvalOptions(benchmark=benchmark, model="m", base_model="b"))


def test_mt_bench_comparison_report_per_category(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from labrador.eval.mt_report import write_mt_comparison
    from labrador.eval.report import ResultsDir

    def turns(scores: list[float | None]) -> list[TurnResult]:
        cats = ["math", "math", "writing"]
        return [TurnResult(MTQuestion(str(i), cats[i], ("q",)), 1, "a", Judgment(s, "j"))
                for i, s in enumerate(scores)]

    out = ResultsDir(tmp_path, "mt_bench")
    model = Model("m", CountingClient(), "fp")
    console = io.StringIO()
    summary = write_mt_comparison(out, Console(file=console, width=100), model, model, model,
                                  turns([2.0, 4.0, None]), turns([6.0, 8.0, 5.0]), {})
    final = out.commit()
    assert summary["categories"]["math"] == {"base": 3.0, "tuned": 7.0, "delta": 4.0}
    assert summary["categories"]["writing"]["delta"] is None and summary["delta"] == pytest.approx(19 / 3 - 3)
    assert (final / "comparison.png").is_file() and (final / "items.jsonl").is_file()
    assert not final.name.startswith(".") and "writing" in console.getvalue()
