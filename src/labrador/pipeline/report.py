"""The run's summary: report.md with data counts, stage times and before/after scores, plus PNG charts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labrador.files import atomic_write_text
from labrador.pipeline.settings import PipelineSettings


def _pct(part: dict[str, Any] | None) -> str:
    if not part:
        return "n/a"
    return f"{100 * part['accuracy']:.0f}% ({part['correct']}/{part['total']})"


def _plot(path: Path, draw: Any) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    try:
        if draw(ax) is False:
            return None
        fig.tight_layout()
        tmp = path.with_name(path.stem + ".tmp.png")
        fig.savefig(tmp, dpi=100)
        tmp.replace(path)
        return path.name
    finally:
        plt.close(fig)


def _loss_series(metrics_path: str | None) -> list[tuple[int, float]]:
    if not metrics_path or not Path(metrics_path).is_file():
        return []
    rows = [json.loads(line) for line in Path(metrics_path).read_text().splitlines() if line.strip()]
    return [(int(r.get("step", i)), float(r["loss"])) for i, r in enumerate(rows) if "loss" in r]


def write_report(settings: PipelineSettings, result: Any) -> Path:
    out = result.outputs
    run_dir = result.run_dir
    lines = ["# Pipeline report", "", f"Taxonomy: `{settings.taxonomy_path}` (base `{settings.taxonomy_base}`)  ",
             f"Student: `{settings.student}`, teacher: `{settings.teacher}`", ""]
    lines += ["## Stages", "", "| stage | status | wall time (s) |", "|---|---|---|"]
    lines += [f"| {r.name} | {r.status} | {r.wall_s:.1f} |" for r in result.records]
    lines.append("")
    if "validate" in out:
        lines += ["## Changed leaves", ""] + [f"- `{leaf['rel_path']}` ({leaf['kind']})"
                                              for leaf in out["validate"]["leaves"]] + [""]
    dec = out.get("prepare_data")
    if dec:
        lines += ["## Data", "", "| phase | generated | + closed-book copies | + seed Q&A | trained on |",
                  "|---|---|---|---|---|"]
        for kind in ("knowledge", "skills"):
            lines.append(f"| {kind} | {dec.get(kind + '_generated', 0)} | {dec.get(kind + '_closed_book', 0)} | "
                         f"{dec.get(kind + '_seed_qa', 0)} | {dec.get(kind + '_rows', 0)} |")
        lines += ["", f"Decontamination: {len(dec['removed'])} row(s) removed that overlapped one of "
                      f"{dec['heldout_questions']} held-out questions (word n-gram check).", ""]
        per_leaf = out.get("generate", {}).get("per_leaf", {})
        if per_leaf:
            chart = _plot(run_dir / "data_counts.png", lambda ax: (
                ax.barh(list(per_leaf), list(per_leaf.values())), ax.set_xlabel("generated rows"),
                ax.set_title("Generated rows per leaf")))
            if chart:
                lines += [f"![generated rows per leaf]({chart})", ""]
    curves = {phase: _loss_series(out.get(f"train_{phase}", {}).get("metrics")) for phase in ("knowledge", "skills")}
    if any(curves.values()):
        def draw_loss(ax: Any) -> None:
            offset = 0
            for phase, series in curves.items():
                if series:
                    ax.plot([offset + s for s, _ in series], [v for _, v in series], label=phase)
                    offset += max(s for s, _ in series)
            ax.set_xlabel("optimizer step")
            ax.set_ylabel("training loss")
            ax.legend()
        chart = _plot(run_dir / "training_loss.png", draw_loss)
        lines += ["## Training", ""]
        for phase in ("knowledge", "skills"):
            info = out.get(f"train_{phase}", {})
            lines.append(f"- {phase} phase: {info.get('samples')} samples, {info.get('steps')} steps, "
                         f"checkpoint `{info.get('checkpoint')}`")
        lines += ["", f"![training loss]({chart})" if chart else "", ""]
    base, tuned = out.get("evaluate_base"), out.get("evaluate_tuned")
    if base and tuned:
        lines += ["## Before / after", "", "| check | base | tuned |", "|---|---|---|",
                  f"| held-out questions (key facts) | {_pct(base.get('heldout'))} | {_pct(tuned.get('heldout'))} |",
                  f"| general check (key facts) | {_pct(base.get('general'))} | {_pct(tuned.get('general'))} |"]
        bj, tj = base.get("judge") or {}, tuned.get("judge") or {}
        if bj.get("mean") is not None or tj.get("mean") is not None:
            fmt = lambda j: f"{j['mean']:.2f} ({j['rated']}/{j['total']} rated)" if j.get("mean") else "n/a"  # noqa: E731
            lines.append(f"| held-out, judge rating 1-5 ({bj.get('judge') or tj.get('judge')}) | {fmt(bj)} | "
                         f"{fmt(tj)} |")
        lines.append("")
        names = [n for n in ("heldout", "general") if base.get(n) and tuned.get(n)]

        def draw_scores(ax: Any) -> None:
            xs = range(len(names))
            ax.bar([x - 0.2 for x in xs], [100 * base[n]["accuracy"] for n in names], 0.4, label="base")
            ax.bar([x + 0.2 for x in xs], [100 * tuned[n]["accuracy"] for n in names], 0.4, label="tuned")
            ax.set_xticks(list(xs), names)
            ax.set_ylabel("% correct")
            ax.set_ylim(0, 100)
            ax.legend()
        chart = _plot(run_dir / "scores.png", draw_scores) if names else None
        if chart:
            lines += [f"![before and after]({chart})", ""]
        lines += [f"Answers and scores: `{base.get('details')}`, `{tuned.get('details')}`", ""]
    gguf = out.get("convert", {}).get("gguf")
    if gguf:
        lines += ["## Use the new model", "", f"`ilab model chat --model {gguf}`", ""]
    report = run_dir / "report.md"
    atomic_write_text(report, "\n".join(lines))
    return report
