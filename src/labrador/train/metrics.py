"""Run-directory records: metrics.jsonl (one line per optimizer step), loss.png, and the progress display."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from labrador.files import atomic_write_bytes, atomic_write_text

logger = logging.getLogger(__name__)


def memory_mb(device: Any) -> float:
    """Peak GPU memory on CUDA, else the process's peak resident set size."""
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


class MetricsLog:
    """Appends JSON lines; only the main process writes."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)
            cut_torn_tail(path)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def drop_after(self, phase: str, step: int) -> None:
        """On resume: forget the lines a killed run wrote after its last saved state (they are redone)."""
        if not self.enabled or not self.path.is_file():
            return
        kept = [r for r in read_metrics(self.path) if r.get("phase") != phase or r.get("step", 0) <= step]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))


def cut_torn_tail(path: Path) -> None:
    """Drop a last line without its newline: a process killed inside `write` left half a record, and the
    next append must not be glued onto it. Every complete record ends with a newline."""
    if not path.is_file():
        return
    with path.open("rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of metrics.jsonl; a line that is not a JSON object (torn by a kill) is skipped with a
    warning, so a damaged log never stops a resume or the loss curve."""
    if not path.is_file():
        return []
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            logger.warning("%s:%d: not a metrics record (a write cut short?); skipped.", path, n)
    return records


def plot_loss(metrics_path: Path, target: Path) -> None:
    """loss.png: training loss per step (one line per phase) and held-out loss where scored."""
    records = read_metrics(metrics_path)
    steps = [r for r in records if "loss" in r]
    if not steps:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    for phase in dict.fromkeys(r.get("phase", "train") for r in steps):
        mine = [r for r in steps if r.get("phase", "train") == phase]
        axis.plot([r["step"] for r in mine], [r["loss"] for r in mine], label=f"{phase} train loss")
        scored = [r for r in records if r.get("phase", "train") == phase and "held_out_loss" in r]
        if scored:
            axis.plot([r["step"] for r in scored], [r["held_out_loss"] for r in scored], "o--",
                      label=f"{phase} held-out loss")
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("loss (per token)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=100)
    plt.close(figure)
    atomic_write_bytes(target, png.getvalue())


class Progress:
    """A rich progress bar (loss, tokens/s, ETA) on a terminal; one plain line per step otherwise."""

    def __init__(self, total: int, description: str, enabled: bool, completed: int = 0) -> None:
        self.enabled = enabled
        self.total = total
        self.started = time.monotonic()
        self.done_at_start = completed
        self.bar = None
        if not enabled:
            return
        from rich.console import Console

        self.console = Console(stderr=True)
        if self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                                    console=self.console)
            self.task = self.bar.add_task(description, total=total, completed=completed, info="")
            self.bar.start()

    def update(self, step: int, loss: float, tokens_per_s: float) -> None:
        if not self.enabled:
            return
        info = f"loss {loss:.4f}  {tokens_per_s:,.0f} tok/s"
        if self.bar is not None:
            self.bar.update(self.task, completed=step, info=info)
            return
        elapsed = time.monotonic() - self.started
        rate = (step - self.done_at_start) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        self.console.print(f"step {step}/{self.total}  {info}  ETA {eta:,.0f}s", highlight=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
