"""Results directories, files and terminal tables.

A run writes into `<output-dir>/.<name>.partial/` and renames it to `<output-dir>/<name>/` only when every file
is written, so a directory without the leading dot is always complete.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from labrador.files import write_jsonl


class ResultsDir:
    def __init__(self, output_dir: Path, benchmark: str) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{benchmark}-{stamp}"
        n = 1
        while (output_dir / name).exists():
            n += 1
            name = f"{benchmark}-{stamp}-{n}"
        self.final = output_dir / name
        self.path = output_dir / f".{name}.partial"
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)

    def write_json(self, name: str, data: object) -> None:
        (self.path / name).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def write_jsonl(self, name: str, rows: Iterable[dict]) -> None:
        write_jsonl(self.path / name, rows)

    def write_csv(self, name: str, rows: Sequence[dict], columns: Sequence[str]) -> None:
        with (self.path / name).open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    def comparison_chart(self, values: Mapping[str, Mapping[str, float | None]], base: str, tuned: str,
                         title: str, ylabel: str) -> None:
        """comparison.png: grouped bars, per label of `values` its "base" and its "tuned" value."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        labels = list(values)
        series = {f"base ({base})": [v["base"] for v in values.values()],
                  f"tuned ({tuned})": [v["tuned"] for v in values.values()]}
        width = 0.8 / len(series)
        fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(labels) + 2), 4.5))
        for i, (series_name, heights) in enumerate(series.items()):
            xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(labels))]
            ax.bar(xs, [h if h is not None else 0.0 for h in heights], width, label=series_name)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        fig.savefig(self.path / "comparison.png", dpi=100)
        plt.close(fig)

    def commit(self) -> Path:
        self.path.rename(self.final)
        return self.final


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(console: Console, title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    console.print(f"[bold]{title}[/bold]")  # not Table(title=): a title wraps to the table's width
    table = Table()
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(fmt(v) if isinstance(v, float) or v is None else str(v) for v in row))
    console.print(table)


def mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def delta(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before
