"""`mmlu` and `mmlu_branch` runs: multiple-choice accuracy per subject/task, one model or base vs tuned."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console

from labrador.errors import LabradorError
from labrador.eval.calls import Model, parallel_map
from labrador.eval.mmlu_data import MCDataset
from labrador.eval.multiple_choice import MCReport, MCResult, few_shot_examples, score_question
from labrador.eval.report import ResultsDir, delta, print_table


def run_multiple_choice(model: Model, data: MCDataset, few_shots: int, workers: int = 1,
                        progress: Callable[[int], None] | None = None) -> MCReport:
    """Score every test question of `data` with `few_shots` examples from the dev split (or the subject)."""

    def one(q) -> MCResult:
        shots = few_shot_examples(q, data.dev, data.test, few_shots)
        try:
            return score_question(model.loglikelihoods, q, shots)
        except LabradorError:
            raise
        except Exception as err:
            raise LabradorError(f"Scoring question {q.id} with {model.label} failed: {type(err).__name__}: {err}. "
                                "If the prompt is too long for the model's context, lower --few-shots.") from err

    return MCReport(results=parallel_map(one, data.test, workers, progress))


def write_single(out: ResultsDir, console: Console, benchmark: str, model: Model, report: MCReport,
                 settings: dict) -> dict:
    summary = {"benchmark": benchmark, "model": model.label, **settings, **report.summary()}
    out.write_jsonl("items.jsonl", (r.to_json() for r in report.results))
    rows = [(s, v["questions"], v["accuracy"]) for s, v in summary["subjects"].items()]
    rows.append(("overall (mean of subjects)", len(report.results), report.overall))
    print_table(console, f"{benchmark}: {model.label}", ["subject", "questions", "accuracy"], rows)
    return summary


def write_comparison(out: ResultsDir, console: Console, benchmark: str, base: Model, tuned: Model,
                     base_report: MCReport, tuned_report: MCReport, settings: dict) -> dict:
    """Per-subject (per-task) accuracy of both models, the delta, and which tasks improved or regressed."""
    base_acc, tuned_acc = base_report.subject_accuracy(), tuned_report.subject_accuracy()
    counts = {s: len(rs) for s, rs in tuned_report.by_subject().items()}
    tasks = {}
    for subject in sorted(set(base_acc) | set(tuned_acc)):
        b, t = base_acc.get(subject), tuned_acc.get(subject)
        tasks[subject] = {"questions": counts.get(subject, 0), "base": b, "tuned": t, "delta": delta(t, b)}
    summary = {
        "benchmark": benchmark, "base_model": base.label, "model": tuned.label, **settings,
        "base": {"overall": base_report.overall, "micro_accuracy": base_report.micro},
        "tuned": {"overall": tuned_report.overall, "micro_accuracy": tuned_report.micro},
        "delta": tuned_report.overall - base_report.overall,
        "tasks": tasks,
        "improvements": [s for s, v in tasks.items() if (v["delta"] or 0) > 0],
        "regressions": [s for s, v in tasks.items() if (v["delta"] or 0) < 0],
        "no_change": [s for s, v in tasks.items() if (v["delta"] or 0) == 0],
    }
    rows = [{"model": "base", **r.to_json()} for r in base_report.results]
    rows += [{"model": "tuned", **r.to_json()} for r in tuned_report.results]
    out.write_jsonl("items.jsonl", rows)
    out.comparison_chart(tasks, base.label, tuned.label, f"{benchmark}: accuracy per task", "accuracy")
    table_rows = [(s, v["questions"], v["base"], v["tuned"], v["delta"]) for s, v in tasks.items()]
    table_rows.append(("overall", len(tuned_report.results), base_report.overall, tuned_report.overall,
                       summary["delta"]))
    print_table(console, f"{benchmark}: base {base.label} vs tuned {tuned.label}",
                ["task", "questions", "base", "tuned", "delta"], table_rows)
    return summary
