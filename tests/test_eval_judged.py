"""Judged benchmarks end to end with the embedded SmolLM2 as candidate *and* judge (llama.cpp in-process):
mt_bench, mt_bench_branch, dk_bench, plus mmlu_branch built from a real taxonomy git repo and the key-facts
scorer. SmolLM2 rarely writes a `[[rating]]`, which is exactly what checks that unparsable judgments are
counted instead of crashing the run."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from labrador.eval.calls import Model
from labrador.eval.keyfacts import answer_questions
from labrador.eval.questions import CheckQuestion
from labrador.eval.runner import EvalOptions, run_evaluation

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(smollm_client: Any) -> Any:
    return smollm_client


@pytest.fixture
def taxonomy(tmp_path: Path) -> Path:
    """A git repo whose `main` has no leaves; the sample leaves are new on the working tree."""
    import labrador.data

    root = tmp_path / "taxonomy"
    root.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=root,
                       check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    (root / "README.md").write_text("taxonomy\n")
    git("add", "README.md")
    git("commit", "-q", "-m", "base")
    shutil.copytree(Path(labrador.data.__file__).parent / "sample_taxonomy", root, dirs_exist_ok=True)
    return root


def _options(tmp_path: Path, spec: str, **kw) -> EvalOptions:
    return EvalOptions(model=spec, judge_model=spec, output_dir=tmp_path / "results", max_tokens=16,
                       judge_max_tokens=16, **kw)


def _items(results_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (results_dir / "items.jsonl").read_text().splitlines()]


def _check_judged(summary: dict, items: list[dict], low: float, high: float) -> None:
    scores = [i["score"] for i in items]
    assert all(s is None or low <= s <= high for s in scores)
    assert summary["unparsable"] == sum(1 for i in items if i["score"] is None and i["error"] is None)
    assert summary["errors"] == sum(1 for i in items if i["error"] is not None) == 0


def test_mt_bench_three_questions_then_resumed_from_cache(tmp_path: Path, smollm_gguf: Path, shared_dir: Path,
                                                          client) -> None:
    spec = str(smollm_gguf)
    opts = _options(tmp_path, spec, benchmark="mt_bench", data_dir=shared_dir / "data" / "mt_bench", max_questions=3)
    out = io.StringIO()
    first = run_evaluation(opts, Console(file=out, width=120), clients={spec: client})
    s, items = first.summary, _items(first.results_dir)
    assert s["judgments"] == len(items) == 6 and {i["turn"] for i in items} == {1, 2}
    _check_judged(s, items, 1, 10)
    assert s["overall"] is None or 1 <= s["overall"] <= 10
    assert all(i["answer"] for i in items)
    assert "unparsable" in out.getvalue() and "overall" in out.getvalue()
    again = run_evaluation(opts, Console(file=io.StringIO()), clients={spec: client})
    assert again.summary["cache"]["misses"] == 0 and again.summary["cache"]["hits"] == 12
    assert _items(again.results_dir) == items and again.results_dir != first.results_dir


def test_mt_bench_branch_per_leaf(tmp_path: Path, smollm_gguf: Path, shared_dir: Path, taxonomy: Path,
                                  client) -> None:
    spec = str(smollm_gguf)
    opts = _options(tmp_path, spec, benchmark="mt_bench_branch", base_model=spec, taxonomy_path=taxonomy,
                    taxonomy_base="main", data_dir=shared_dir / "data" / "mt_bench", max_questions=1)
    outcome = run_evaluation(opts, Console(file=io.StringIO()), clients={spec: client})
    s, items = outcome.summary, _items(outcome.results_dir)
    assert len(items) == 2 and {i["model"] for i in items} == {"base", "tuned"}
    _check_judged(s["tuned"], [i for i in items if i["model"] == "tuned"], 1, 10)
    (leaf, stats), = s["leaves"].items()
    assert leaf.startswith("compositional_skills/") and stats["questions"] == 1
    assert stats["improvements"] + stats["regressions"] + stats["ties"] + stats["unscored"] == 1
    assert stats["regressions"] == stats["improvements"] == 0  # same model and greedy: nothing can change
    assert (outcome.results_dir / "comparison.png").stat().st_size > 0


def test_mmlu_branch_built_from_the_taxonomy(tmp_path: Path, smollm_gguf: Path, taxonomy: Path, client) -> None:
    spec = str(smollm_gguf)
    opts = EvalOptions(benchmark="mmlu_branch", model=spec, base_model=spec, taxonomy_path=taxonomy,
                       taxonomy_base="main", max_questions=2, output_dir=tmp_path / "results")
    s = run_evaluation(opts, Console(file=io.StringIO()), clients={spec: client}).summary
    assert list(s["tasks"]) == ["knowledge_geography_towns_kelderwick"]
    assert s["tasks"]["knowledge_geography_towns_kelderwick"]["questions"] == 2
    assert 0.0 <= s["tuned"]["overall"] <= 1.0


def test_dk_bench_with_model_and_with_given_responses(tmp_path: Path, smollm_gguf: Path, client) -> None:
    spec = str(smollm_gguf)
    data = tmp_path / "dk.jsonl"
    rows = [{"user_input": "What is the capital of France?", "reference": "Paris", "response": "Paris."},
            {"user_input": "Who founded Kelderwick?", "reference": "Aldous Penhallow, a ferryman.",
             "response": "Nobody knows.", "context": "Kelderwick was founded in 1742 by Aldous Penhallow."}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    judged_only = run_evaluation(replace(_options(tmp_path, spec, benchmark="dk_bench", input_file=data), model=None),
                                 Console(file=io.StringIO()), clients={spec: client})
    items = _items(judged_only.results_dir)
    assert [i["response"] for i in items] == ["Paris.", "Nobody knows."]
    _check_judged(judged_only.summary, items, 1, 5)
    with (judged_only.results_dir / "items.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert [r["user_input"] for r in table] == [r["user_input"] for r in rows] and "score" in table[0]
    answered = run_evaluation(_options(tmp_path, spec, benchmark="dk_bench", input_file=data, max_questions=1),
                              Console(file=io.StringIO()), clients={spec: client})
    (item,) = _items(answered.results_dir)
    assert item["response"] and item["response"] != "Paris."
    s = answered.summary
    assert s["questions"] == 1 and (s["mean"] is None or 1 <= s["mean"] <= 5)


def test_key_facts_on_real_answers(client) -> None:
    question = CheckQuestion("What is the capital of France? Answer in one word.",
                             [["Paris", "Paree"], "zzyzx-not-a-word"])
    (result,) = answer_questions(Model("m", client, "m"), [question], max_tokens=16)
    assert result["answer"] and result["score"] in (0.0, 0.5)
