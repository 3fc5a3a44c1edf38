"""Decontamination: held-out questions must not appear in seed examples or in the training data.

The n-gram test is `labrador.sdg.quality.Decontaminator.match` (the project's one decontaminator, which
generation also uses against seed echoes); this module applies it to a run's seeds and training rows.
"""

from __future__ import annotations

from typing import Any

from labrador.errors import DataError
from labrador.prepare.rows import checked_texts
from labrador.sdg.quality import Decontaminator


def check_seeds(checker: Decontaminator, leaves: list[dict[str, Any]]) -> None:
    """DataError naming the qna.yaml when a leaf's seed text contains a held-out question: the seeds are
    trained on, so a held-out question among them would be measured as seen."""
    for leaf in leaves:
        report = checker.check(leaf["seeds"])
        if not report.clean:
            hit = report.overlaps[0]
            raise DataError(f"{leaf['qna_path']}: the seed text {hit.text!r} {hit.reason} of the held-out question "
                            f"{hit.heldout!r}. Held-out questions must be unseen; reword or remove one of them.")


def drop_contaminated(checker: Decontaminator, rows: list[dict[str, Any]], kind: str,
                      removed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows none of whose checked texts (`checked_texts`) contains a held-out question; each dropped row
    is appended to `removed` with the question it holds and why."""
    kept = []
    for row in rows:
        hit = next((h for h in map(checker.match, checked_texts(row)) if h is not None), None)
        if hit is None:
            kept.append(row)
        else:
            removed.append({"kind": kind, "heldout": hit.heldout, "reason": hit.reason, "text": hit.text[:200]})
    return kept
