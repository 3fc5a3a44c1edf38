"""MMLU-format data: local JSONL/CSV files (`--tasks-dir`) or the Hugging Face dataset `cais/mmlu`.

Accepted rows (one question each):
- JSONL `{"question", "choices": [4 strings], "answer": 0-3 | "A"-"D", ["subject"]}` (the cais/mmlu layout), or
  `{"question", "A", "B", "C", "D", "answer"}` (InstructLab's `mmlubench_<leaf>.jsonl` layout);
- CSV with the columns question,A,B,C,D,answer, with or without that header row (the original MMLU CSVs
  have none).
The subject is the file name without a `_test`/`_dev`/`_val` suffix and without a `mmlubench_` prefix, unless a
row names its own `subject`. `_dev` files are the few-shot pool; `_val` files are ignored.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from labrador import paths
from labrador.errors import DataError
from labrador.eval.multiple_choice import LETTERS, MCQuestion
from labrador.files import iter_objects, write_jsonl
from labrador.userfiles import DATA_FILE, read_text

HF_DATASET = "cais/mmlu"
_ROWS_API = "https://datasets-server.huggingface.co/rows"


@dataclass
class MCDataset:
    test: list[MCQuestion] = field(default_factory=list)
    dev: list[MCQuestion] = field(default_factory=list)

    def subjects(self) -> list[str]:
        return sorted({q.subject for q in self.test})

    def limited(self, max_per_subject: int | None) -> MCDataset:
        """The first `max_per_subject` test questions of each subject (all when None)."""
        if not max_per_subject:
            return self
        kept: list[MCQuestion] = []
        counts: dict[str, int] = {}
        for q in self.test:
            if counts.get(q.subject, 0) < max_per_subject:
                kept.append(q)
                counts[q.subject] = counts.get(q.subject, 0) + 1
        return MCDataset(test=kept, dev=self.dev)


def parse_answer(value: object, n_choices: int, where: str) -> int:
    """0-based index from an index (0-3) or a letter ("B", "b", "B)", "B.")."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, int) and 0 <= value < n_choices:
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit() and 0 <= int(text) < n_choices:
            return int(text)
        if text and text[0].upper() in LETTERS[:n_choices] and (len(text) == 1 or text[1] in ").: "):
            return LETTERS.index(text[0].upper())
    raise DataError(f"{where}: the answer {value!r} is neither a choice index 0-{n_choices - 1} nor a letter "
                    f"{'/'.join(LETTERS[:n_choices])}. Fix the row's 'answer' field.")


def subject_and_split(path: Path) -> tuple[str, str]:
    stem = path.name.rsplit(".", 1)[0]
    for suffix, split in (("_test", "test"), ("_dev", "dev"), ("_val", "val"), ("_validation", "val")):
        if stem.endswith(suffix):
            return stem[: -len(suffix)].removeprefix("mmlubench_"), split
    return stem.removeprefix("mmlubench_"), "test"


def _question(row: dict, subject: str, where: str, line: int) -> MCQuestion:
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{where}: missing 'question' text. Each row needs question, four choices and answer.")
    choices = row["choices"] if "choices" in row else [row.get(letter) for letter in LETTERS]
    if not isinstance(choices, list) or len(choices) != 4 or not all(isinstance(c, str | int | float)
                                                                    and str(c).strip() for c in choices):
        raise DataError(f"{where}: expected four non-empty choices (a 'choices' list or fields A, B, C, D).")
    if "answer" not in row:
        raise DataError(f"{where}: missing 'answer' (a choice index 0-3 or a letter A-D).")
    answer = parse_answer(row["answer"], 4, where)
    subject = str(row.get("subject") or subject)
    return MCQuestion(question=question, choices=tuple(str(c) for c in choices), answer=answer,
                      subject=subject, id=f"{subject}/{line}")


def _read_jsonl(path: Path, subject: str) -> list[MCQuestion]:
    return [_question(row, subject, f"{path}:{n}", n) for n, row in iter_objects(path)]


def _read_csv(path: Path, subject: str) -> list[MCQuestion]:
    out = []
    rows = list(csv.reader(io.StringIO(read_text(path, DATA_FILE), newline="")))
    header = [c.strip() for c in rows[0]] if rows else []
    start = 1 if header and header[0].lower() == "question" else 0
    names = ["question", *LETTERS, "answer"]
    for n, cells in enumerate(rows[start:], start + 1):
        if not cells or not any(c.strip() for c in cells):
            continue
        where = f"{path}:{n}"
        if len(cells) != 6:
            raise DataError(f"{where}: expected 6 columns (question,A,B,C,D,answer), found {len(cells)}.")
        out.append(_question(dict(zip(names, cells, strict=True)), subject, where, n))
    return out


def load_tasks_dir(tasks_dir: Path, pattern: str = "*") -> MCDataset:
    """Every `*.jsonl` / `*.csv` file matching `pattern` under tasks_dir (recursively), sorted by name."""
    if not tasks_dir.is_dir():
        raise DataError(f"{tasks_dir}: the tasks directory does not exist. Pass --tasks-dir with MMLU-format "
                        "JSONL or CSV files (see docs/evaluation.md).")
    data = MCDataset()
    files = sorted(p for p in tasks_dir.rglob(pattern) if p.suffix in (".jsonl", ".csv") and p.is_file())
    for path in files:
        subject, split = subject_and_split(path)
        questions = _read_jsonl(path, subject) if path.suffix == ".jsonl" else _read_csv(path, subject)
        if split == "test":
            data.test.extend(questions)
        elif split == "dev":
            data.dev.extend(questions)
    if not data.test:
        raise DataError(f"{tasks_dir}: no test questions found (looked for {pattern} files ending in .jsonl or "
                        ".csv, not named *_dev/*_val).")
    return data


def _fetch_split(split: str, dest: Path) -> None:
    """Page through the Hugging Face datasets-server rows API (JSON over HTTP, no `datasets` dependency)."""
    import httpx

    rows: list[dict] = []
    offset, total = 0, None
    with httpx.Client(timeout=60, follow_redirects=True) as http:
        while total is None or offset < total:
            params = {"dataset": HF_DATASET, "config": "all", "split": split, "offset": offset, "length": 100}
            reply = http.get(_ROWS_API, params=params)
            reply.raise_for_status()
            body = reply.json()
            total = int(body["num_rows_total"])
            page = [r["row"] for r in body["rows"]]
            if not page:
                break
            rows.extend(page)
            offset += len(page)
    write_jsonl(dest, ({key: row[key] for key in ("question", "choices", "answer", "subject")} for row in rows))


def load_hf_mmlu() -> MCDataset:
    """cais/mmlu (test + dev splits), downloaded once into the cache dir as JSONL in the --tasks-dir format."""
    cache = paths.cache_dir() / "mmlu"
    files = {split: cache / f"all_{split}.jsonl" for split in ("test", "dev")}
    if not all(f.exists() for f in files.values()):
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            raise DataError("MMLU data is not cached and HF_HUB_OFFLINE=1 forbids downloading it. Pass --tasks-dir "
                            "with MMLU-format JSONL/CSV files, or unset HF_HUB_OFFLINE.")
        cache.mkdir(parents=True, exist_ok=True)
        try:
            for split, dest in files.items():
                if not dest.exists():
                    _fetch_split(split, dest)
        except Exception as err:  # noqa: BLE001 - any network failure gets the same advice
            raise DataError(f"Could not download the MMLU dataset {HF_DATASET} from Hugging Face ({err}). "
                            "Check the network, or pass --tasks-dir with MMLU-format JSONL/CSV files.") from None
    return MCDataset(test=_read_jsonl(files["test"], ""), dev=_read_jsonl(files["dev"], ""))
