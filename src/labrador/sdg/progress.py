"""Progress per leaf, pipeline and block (rich), and the end-of-run summary tables.

On a terminal: one live bar per (leaf, block) with rows in/out, teacher requests, tokens and ETA. Elsewhere
(CI logs, pipes): one plain line when each block finishes, so logs stay readable.
"""

from __future__ import annotations

from typing import Any

from labrador.sdg.context import BlockStats


class ProgressDisplay:
    def __init__(self, console: Any | None = None, enabled: bool = True) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.live = enabled and self.console.is_terminal
        self._tasks: dict[int, Any] = {}
        self._progress = None
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                                      console=self.console, transient=False)

    def __enter__(self) -> ProgressDisplay:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, stats: BlockStats, done: int, total: int, final: bool = False) -> None:
        if not self.enabled:
            return
        info = (f"rows {stats.rows_in}->{stats.rows_out}  req {stats.requests} (cached {stats.cached})  "
                f"tok {stats.prompt_tokens}/{stats.completion_tokens}")
        key = id(stats)
        if self._progress is not None:
            if key not in self._tasks:
                label = f"{stats.leaf} · {stats.pipeline.split('/')[0]} · {stats.block}"
                self._tasks[key] = self._progress.add_task(label, total=max(total, 1), info=info)
            self._progress.update(self._tasks[key], completed=done, total=max(total, 1), info=info)
        elif final and key not in self._tasks:
            self._tasks[key] = True
            self.console.print(f"[{stats.leaf}] {stats.pipeline} · {stats.block}: {info}", highlight=False)


def summary_tables(summary: dict[str, Any]) -> list[Any]:
    """rich Tables: one row per leaf, then one row per block."""
    from rich.table import Table

    leaves = Table(title="Generated data per leaf")
    for column in ("leaf", "kind", "rows", "dropped", "status"):
        leaves.add_column(column, justify="right" if column in ("rows",) else "left")
    for leaf in summary["leaves"]:
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(leaf["dropped"].items())) or "-"
        status = f"FAILED: {leaf['error']}" if leaf["error"] else ("EMPTY" if not leaf["rows"] else "ok")
        leaves.add_row(leaf["leaf"], leaf["kind"], str(leaf["rows"]), dropped, status)
    blocks = Table(title="Blocks")
    for column in ("leaf", "block", "in", "out", "requests", "cached", "parse fail", "errors", "filtered",
                   "tokens in", "tokens out", "s"):
        blocks.add_column(column, justify="left" if column in ("leaf", "block") else "right")
    for b in summary["blocks"]:
        blocks.add_row(b["leaf"], b["block"], str(b["rows_in"]), str(b["rows_out"]), str(b["requests"]),
                       str(b["cached"]), str(b["parse_failures"]), str(b["errors"]), str(b["filtered"]),
                       str(b["prompt_tokens"]), str(b["completion_tokens"]), f"{b['seconds']:.1f}")
    return [leaves, blocks]
