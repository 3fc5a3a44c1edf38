"""Reports for the judged conversation benchmarks: mt_bench (one model, or base vs tuned per category) and
mt_bench_branch (base vs tuned per leaf, with improvements, regressions and ties per question)."""

from __future__ import annotations

from rich.console import Console

from labrador.eval.calls import Model
from labrador.eval.mt_bench import TurnResult, summarize
from labrador.eval.report import ResultsDir, delta, mean, print_table


def _rows(label: str, turns: list[TurnResult]) -> list[dict]:
    return [{"model": label, **t.to_json()} for t in turns]


def _count_line(summary: dict) -> str:
    return (f"{summary['scored']}/{summary['judgments']} judgments scored, {summary['unparsable']} unparsable, "
            f"{summary['errors']} failed calls")


def write_mt_single(out: ResultsDir, console: Console, model: Model, judge: Model, turns: list[TurnResult],
                    settings: dict) -> dict:
    stats = summarize(turns)
    summary = {"benchmark": "mt_bench", "model": model.label, "judge": judge.label, **settings, **stats}
    out.write_jsonl("items.jsonl", _rows(model.label, turns))
    rows = [(c, v) for c, v in stats["categories"].items()]
    rows += [(f"turn {n}", v) for n, v in stats["turns"].items()]
    rows.append(("overall", stats["overall"]))
    print_table(console, f"mt_bench: {model.label} (judge {judge.label})", ["category", "score (1-10)"], rows)
    console.print(_count_line(stats))
    return summary


def write_mt_comparison(out: ResultsDir, console: Console, base: Model, tuned: Model, judge: Model,
                        base_turns: list[TurnResult], tuned_turns: list[TurnResult], settings: dict) -> dict:
    b, t = summarize(base_turns), summarize(tuned_turns)
    categories = sorted(set(b["categories"]) | set(t["categories"]))
    per_category = {c: {"base": b["categories"].get(c), "tuned": t["categories"].get(c),
                        "delta": delta(t["categories"].get(c), b["categories"].get(c))} for c in categories}
    summary = {"benchmark": "mt_bench", "base_model": base.label, "model": tuned.label, "judge": judge.label,
               **settings, "base": b, "tuned": t, "delta": delta(t["overall"], b["overall"]),
               "categories": per_category}
    out.write_jsonl("items.jsonl", _rows("base", base_turns) + _rows("tuned", tuned_turns))
    out.comparison_chart(per_category, base.label, tuned.label, "mt_bench: mean judge score per category",
                         "score (1-10)")
    rows = [(c, v["base"], v["tuned"], v["delta"]) for c, v in per_category.items()]
    rows.append(("overall", b["overall"], t["overall"], summary["delta"]))
    print_table(console, f"mt_bench: base {base.label} vs tuned {tuned.label} (judge {judge.label})",
                ["category", "base", "tuned", "delta"], rows)
    console.print(f"base: {_count_line(b)}; tuned: {_count_line(t)}")
    return summary


def compare_per_leaf(base_turns: list[TurnResult], tuned_turns: list[TurnResult]) -> dict[str, dict]:
    """Pair each question's base and tuned score; a question is an improvement, a regression, a tie, or
    unscored (when either judgment could not be parsed)."""
    tuned_by_id = {(t.question.id, t.turn): t for t in tuned_turns}
    leaves: dict[str, dict] = {}
    for b in base_turns:
        t = tuned_by_id[(b.question.id, b.turn)]
        leaf = leaves.setdefault(b.question.group, {"questions": 0, "improvements": 0, "regressions": 0,
                                                    "ties": 0, "unscored": 0, "_base": [], "_tuned": []})
        leaf["questions"] += 1
        bs, ts = b.judgment.score, t.judgment.score
        leaf["_base"].append(bs)
        leaf["_tuned"].append(ts)
        if bs is None or ts is None:
            leaf["unscored"] += 1
        elif ts > bs:
            leaf["improvements"] += 1
        elif ts < bs:
            leaf["regressions"] += 1
        else:
            leaf["ties"] += 1
    for leaf in leaves.values():
        leaf["base"], leaf["tuned"] = mean(leaf.pop("_base")), mean(leaf.pop("_tuned"))
        leaf["delta"] = delta(leaf["tuned"], leaf["base"])
    return dict(sorted(leaves.items()))


def write_branch_comparison(out: ResultsDir, console: Console, base: Model, tuned: Model, judge: Model,
                            base_turns: list[TurnResult], tuned_turns: list[TurnResult], settings: dict) -> dict:
    b, t = summarize(base_turns), summarize(tuned_turns)
    leaves = compare_per_leaf(base_turns, tuned_turns)
    totals = {k: sum(v[k] for v in leaves.values()) for k in ("improvements", "regressions", "ties", "unscored")}
    summary = {"benchmark": "mt_bench_branch", "base_model": base.label, "model": tuned.label,
               "judge": judge.label, **settings, "base": b, "tuned": t, "delta": delta(t["overall"], b["overall"]),
               **totals, "leaves": leaves}
    out.write_jsonl("items.jsonl", _rows("base", base_turns) + _rows("tuned", tuned_turns))
    out.comparison_chart(leaves, base.label, tuned.label, "mt_bench_branch: mean judge score per leaf",
                         "score (1-10)")
    rows = [(x, v["questions"], v["base"], v["tuned"], v["delta"], v["improvements"], v["regressions"],
             v["ties"], v["unscored"]) for x, v in leaves.items()]
    rows.append(("overall", len(base_turns), b["overall"], t["overall"], summary["delta"], totals["improvements"],
                 totals["regressions"], totals["ties"], totals["unscored"]))
    print_table(console, f"mt_bench_branch: base {base.label} vs tuned {tuned.label} (judge {judge.label})",
                ["leaf", "questions", "base", "tuned", "delta", "improved", "regressed", "tied", "unscored"], rows)
    console.print(f"base: {_count_line(b)}; tuned: {_count_line(t)}")
    return summary
