"""Plain data objects of the taxonomy: what a validated qna.yaml becomes, and what a lint reports.

They are dataclasses (no pydantic) so that importing them is free; the reader fills them only from files
that passed validation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

LeafKind = Literal["knowledge", "freeform_skill", "grounded_skill"]
Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class QnA:
    question: str
    answer: str


@dataclass(frozen=True)
class SeedExample:
    """Knowledge seeds use ``context`` + ``questions_and_answers``; skill seeds use question/answer(/context)."""

    question: str | None = None
    answer: str | None = None
    context: str | None = None
    questions_and_answers: list[QnA] = field(default_factory=list)


@dataclass(frozen=True)
class DocumentRef:
    """Where a knowledge leaf's documents live: a git ``repo`` at ``commit``, or a local ``folder``."""

    repo: str | None
    commit: str | None
    patterns: list[str]
    folder: str | None = None


@dataclass(frozen=True)
class Leaf:
    qna_path: Path
    rel_path: str
    name: str
    kind: LeafKind
    version: int
    created_by: str
    domain: str | None
    task_description: str | None
    document_outline: str | None
    seed_examples: list[SeedExample]
    document: DocumentRef | None


@dataclass(frozen=True)
class Issue:
    """One lint finding; ``str(issue)`` gives ``ERROR: <path>:<line>:<col> [<yaml.path>] <message>``."""

    path: str
    line: int
    column: int
    severity: Severity
    message: str
    yaml_path: str | None = None

    def __str__(self) -> str:
        label = "ERROR" if self.severity == "error" else "WARN"
        where = f"{self.path}:{self.line}:{self.column}"
        if self.yaml_path:
            return f"{label}: {where} [{self.yaml_path}] {self.message}"
        return f"{label}: {where} {self.message}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Document:
    """One knowledge document as text; ``path`` is relative (posix) to the repo checkout or the folder."""

    path: str
    text: str
