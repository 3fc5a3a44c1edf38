"""Which file or directory a served model name means (delegates to `labrador.models.resolve`)."""

from __future__ import annotations

from pathlib import Path


def resolve_served_model(model: str | None) -> tuple[Path, str]:
    """(path, public model id); ModelError for a missing, corrupt or non-model path (one clear line)."""
    from labrador.models.resolve import resolve_model

    resolved = resolve_model(model)
    return resolved.path, resolved.name
