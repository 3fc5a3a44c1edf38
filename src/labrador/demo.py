"""`make demo` (`python -m labrador.demo`): teach the embedded SmolLM2 about an invented town it cannot know.

Workspace: `<XDG data dir>/labrador/demo/` (override with `--workspace`), holding `taxonomy/` (a git repository
made from the bundled sample taxonomy), `run/` (the pipeline run directory: stamps, data, checkpoints, GGUF,
report.md) and `demo_times.json` (wall time per stage). Running the demo again reuses every stage that is
up to date; `--fresh` starts over. The settings are the `cpu-laptop` preset (labrador/presets/cpu-laptop.yaml);
config.yaml plays no part, so the demo gives the same result on every machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from labrador import paths
from labrador.errors import LabradorError

if TYPE_CHECKING:
    from labrador.pipeline.settings import PipelineSettings

PRESET = "cpu-laptop"
GOAL = "tuned >= 50% held-out correct where base < 10%, general check drops <= 5 points"


def demo_file(name: str) -> Path:
    return Path(str(resources.files("labrador") / "data" / "demo" / name))


def demo_settings(workspace: Path, threads: int, seed: int | None = None, preset: str = PRESET) -> PipelineSettings:
    """The preset's settings (cpu-laptop: sized for ~2 CPU cores in under 30 minutes; docs/demo.md says how it
    was tuned) with the demo's workspace, questions and thread count."""
    from labrador.pipeline.settings import PipelineSettings

    return PipelineSettings.from_preset(preset, {stage: {"seed": seed} for stage in ("generate", "prepare", "train")}, {
        "taxonomy_path": workspace / "taxonomy", "run_dir": workspace / "run", "taxonomy_base": "empty",
        "heldout": demo_file("heldout.yaml"), "general_check": demo_file("general_check.yaml"), "threads": threads})


def ensure_taxonomy(workspace: Path) -> Path:
    from labrador.workspace import create_sample_taxonomy

    taxonomy = workspace / "taxonomy"
    if not (taxonomy / ".git").is_dir():
        shutil.rmtree(taxonomy, ignore_errors=True)
        taxonomy.mkdir(parents=True)
        create_sample_taxonomy(taxonomy)
        print(f"Created the demo taxonomy (bundled sample) at {taxonomy}")
    return taxonomy


def ilab_command() -> list[str]:
    script = Path(sys.executable).with_name("ilab")
    return [str(script)] if script.exists() else [sys.executable, "-m", "labrador.cli.main"]


def ask_tuned(model: str, question: str, threads: int) -> str:
    from labrador.sdg.output import SYSTEM_PROMPT

    command = [*ilab_command(), "model", "chat", "--model", model, "--greedy", "--max-tokens", "96",
               "--threads", str(threads), "--context", SYSTEM_PROMPT, "-qq", question]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise LabradorError(f"`ilab model chat -qq` failed: {done.stderr.strip()}")
    return done.stdout.strip()


def summarize(result: object, workspace: Path, wall: float) -> dict:
    out = result.outputs  # type: ignore[attr-defined]
    times = {r.name: round(r.wall_s, 1) for r in result.records}  # type: ignore[attr-defined]
    base, tuned = out.get("evaluate_base", {}), out.get("evaluate_tuned", {})
    summary = {"wall_s": round(wall, 1), "stage_wall_s": times,
               "heldout": {"base": base.get("heldout"), "tuned": tuned.get("heldout")},
               "general": {"base": base.get("general"), "tuned": tuned.get("general")},
               "judge": {"base": base.get("judge"), "tuned": tuned.get("judge")},
               "data": {k: v for k, v in out.get("prepare_data", {}).items() if k.endswith(("_rows", "_generated",
                                                                                           "_closed_book"))},
               "decontamination_removed": len(out.get("prepare_data", {}).get("removed", []))}
    if base.get("heldout") and tuned.get("heldout") and base.get("general") and tuned.get("general"):
        drop = 100 * (base["general"]["accuracy"] - tuned["general"]["accuracy"])
        summary["goal_met"] = (tuned["heldout"]["accuracy"] >= 0.5 and base["heldout"]["accuracy"] < 0.1
                               and drop <= 5)
        summary["general_drop_points"] = round(drop, 1)
    (workspace / "demo_times.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m labrador.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=None, help="default: <XDG data dir>/labrador/demo")
    parser.add_argument("--fresh", action="store_true", help="delete the workspace first")
    parser.add_argument("--threads", type=int, default=None,
                        help="llama.cpp threads (default: 2, or 1 when the CPU is already busy)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of generation and training (default: the preset's, 42)")
    parser.add_argument("--preset", default=PRESET, help=f"settings preset, a name or a YAML file (default: {PRESET})")
    args = parser.parse_args(argv)
    workspace = (args.workspace or paths.data_dir() / "demo").expanduser().resolve()
    cores = os.cpu_count() or 1
    busy = os.getloadavg()[0] >= cores
    threads = args.threads or (1 if busy or cores < 2 else 2)
    # On an oversubscribed CPU, spinning worker threads wait on each other: one thread each for llama.cpp and
    # torch measured 3x (torch) to 10x (llama.cpp) faster than two here while 7 other jobs ran.
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    print(f"Using {threads} thread(s) for llama.cpp and torch (load average {os.getloadavg()[0]:.1f} on {cores} "
          "cores).")
    if args.fresh:
        shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True, exist_ok=True)
    try:
        ensure_taxonomy(workspace)
        from labrador.pipeline.runner import run_pipeline

        start = time.perf_counter()
        result = run_pipeline(demo_settings(workspace, threads, args.seed, args.preset))
        model = result.gguf or result.checkpoint
        from labrador.eval.questions import load_question_set

        question = load_question_set(demo_file("heldout.yaml")).questions[0].question  # the demo data's own
        chat_start = time.perf_counter()
        answer = ask_tuned(model, question, threads) if model else "(no tuned model)"
        result.records.append(type(result.records[0])("chat", "ran", time.perf_counter() - chat_start))
        summary = summarize(result, workspace, time.perf_counter() - start)
    except LabradorError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    print("\nStage wall times (s): " + ", ".join(f"{k} {v}" for k, v in summary["stage_wall_s"].items()))
    print(f"Total: {summary['wall_s']} s. Report: {result.report}")
    for name in ("heldout", "general"):
        b, t = summary[name]["base"], summary[name]["tuned"]
        if b and t:
            print(f"{name}: base {b['correct']}/{b['total']}, tuned {t['correct']}/{t['total']}")
    if "goal_met" in summary:
        print(f"Goal ({GOAL}): {'met' if summary['goal_met'] else 'NOT met'}")
    print(f"\n$ ilab model chat --model {model} -qq {question!r}\n{answer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
