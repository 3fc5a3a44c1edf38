"""Prompt configs (YAML) and the lenient parsers that cut teacher output into fields.

A prompt file holds `system`, `introduction`, `principles`, `examples`, `generation` (joined into the user turn
with blank lines), `example_template` (how one sampled seed example is shown), and `start_tags` / `end_tags`
(one pair per output field). Placeholders are `{column}`; only the template is formatted, never row values, so
braces inside documents are harmless.

Parsing is lenient on purpose (small teachers such as SmolLM2-135M): tags match case-insensitively, with
markdown decoration (`**Question:**`, `### Question`, `1. Question:`) and without the trailing colon, and one
completion may hold several items (fan-out). Output that yields no complete item returns [] and is counted as a
parse failure by the caller, never raised.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from labrador.errors import DataError
from labrador.files import read_yaml

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
SECTIONS = ("introduction", "principles", "examples", "generation")


@dataclass
class PromptConfig:
    name: str
    system: str = ""
    introduction: str = ""
    principles: str = ""
    examples: str = ""
    generation: str = ""
    example_template: str = ""
    start_tags: list[str] = field(default_factory=list)
    end_tags: list[str] = field(default_factory=list)
    mode: str = "chat"  # chat: system + user messages; completion: one text the teacher continues
    prefix: str = ""  # completion mode: the text the prompt ends with, put back before parsing
    stop: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def template(self) -> str:
        return "\n\n".join(getattr(self, s).strip() for s in SECTIONS if getattr(self, s).strip())

    def digest(self) -> str:
        """Short hash of the prompt text, recorded in each row's lineage."""
        text = "\x00".join([self.system, self.template, self.example_template, *self.start_tags, *self.end_tags,
                             self.mode, self.prefix, *self.stop])
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def fill(template: str, values: dict[str, Any], where: str = "") -> str:
    """Replace `{name}` with values[name]; a missing name is a DataError that names the prompt."""

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise DataError(
                f"{where}: the prompt uses {{{key}}} but the row has no column '{key}' "
                f"(columns: {sorted(values)}). Fix the prompt or add the column with an earlier block."
            )
        value = values[key]
        return "" if value is None else str(value)

    return _PLACEHOLDER.sub(sub, template)


def load_prompt(ref: str, base_dir: Path | None = None) -> PromptConfig:
    """Load a prompt by package name (`knowledge_qa` -> sdg/prompts/knowledge_qa.yaml) or by path.

    A relative path is resolved against `base_dir` (the directory of the pipeline that names it) first.
    """

    candidates: list[Path] = []
    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        path = Path(ref).expanduser()
        if not path.is_absolute() and base_dir is not None:
            candidates.append(base_dir / path)
        candidates.append(path)
    else:
        candidates.append(Path(str(resources.files("labrador.sdg").joinpath("prompts", f"{ref}.yaml"))))
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise DataError(f"Prompt '{ref}' not found (looked at {', '.join(map(str, candidates))}). "
                        "Use the name of a built-in prompt or a path to a prompt YAML file.")
    raw = read_yaml(path) or {}
    known = {"system", "example_template", "start_tags", "end_tags", "mode", "prefix", "stop", *SECTIONS}
    unknown = set(raw) - known
    if not isinstance(raw, dict) or unknown:
        raise DataError(f"{path}: unknown prompt keys {sorted(unknown)}; allowed keys are {sorted(known)}.")
    config = PromptConfig(name=path.stem, source=str(path), **raw)
    if len(config.start_tags) != len(config.end_tags):
        raise DataError(f"{path}: start_tags and end_tags must have the same length (one pair per output field).")
    if config.mode not in ("chat", "completion"):
        raise DataError(f"{path}: mode must be 'chat' or 'completion', not {config.mode!r}.")
    return config


# ---------------------------------------------------------------------------------------------------- parsers

_DECOR = r"[\s>*#_`\-]*(?:\d+[.)]\s*)?[*_`]*"  # markdown bullets, numbering, bold/italic around a tag


def _tag_pattern(tag: str) -> re.Pattern[str]:
    core = tag.strip()
    bare = core.rstrip(":").strip()
    if bare.startswith("[") and bare.endswith("]"):
        bare = bare[1:-1].strip()
    # "[Question]", "Question:", "**Question**:" and "question -" all match the tag "Question:".
    body = r"\[?\s*" + re.escape(bare) + r"\s*\]?"
    return re.compile(r"(?:^|\n)" + _DECOR + body + r"[*_`]*\s*(?:[:\-]\s*)?[*_`]*[ \t]*", re.IGNORECASE)


_LABEL = re.compile(r"^\s*[*_]*(?:text|context|answer|response|summary|question)[*_]*\s*:\s*", re.IGNORECASE)


def _clean(text: str) -> str:
    text = text.strip()
    text = re.sub(r"^[*_`]+\s*", "", text)
    text = re.sub(r"\s*[*_`]+$", "", text)
    return text.strip().strip('"').strip()


def parse_tagged(text: str, fields: list[str], start_tags: list[str], end_tags: list[str]) -> list[dict[str, str]]:
    """Cut `text` into items {field: value}; an item is kept only when every field is non-empty.

    A field whose start tag is "" takes the text from the beginning (or from the previous field's end); an end
    tag of "" means "up to the next start tag or the end of the text".
    """
    if not fields:
        return []
    if len(fields) == 1 and not start_tags[0].strip():
        value = text
        if end_tags[0].strip():
            value = text.split(end_tags[0].strip(), 1)[0]
        value = _clean(_LABEL.sub("", value, count=1))
        return [{fields[0]: value}] if value else []
    hits: list[tuple[int, int, int]] = []  # (tag start, content start, field index)
    for index, tag in enumerate(start_tags):
        if not tag.strip():
            continue
        for m in _tag_pattern(tag).finditer(text):
            hits.append((m.start(), m.end(), index))
    hits.sort()
    # The first field may have no tag (its value is the text before the first tagged field).
    if not start_tags[0].strip():
        hits.insert(0, (0, 0, 0))
    items: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last_index = -1
    for pos, (_, content_start, index) in enumerate(hits):
        stop = hits[pos + 1][0] if pos + 1 < len(hits) else len(text)
        value = text[content_start:stop]
        end_tag = end_tags[index].strip() or end_tags[index].strip(" ")  # "\n\n" = cut at a blank line
        if end_tag:
            cut = value.lower().find(end_tag.lower())
            if cut >= 0:
                value = value[:cut]
        if index <= last_index or fields[index] in current:
            items.append(current)
            current = {}
        current[fields[index]] = _clean(value)
        last_index = index
    if current:
        items.append(current)
    return [item for item in items if len(item) == len(fields) and all(item[f] for f in fields)]


def parse_regex(text: str, pattern: str, column: str, lower: bool = True) -> list[dict[str, str]]:
    """First match of `pattern` (group 1 if any) -> {column: value}; [] when there is no match."""
    m = re.search(pattern, text, re.IGNORECASE | re.DOTALL)
    if not m:
        return []
    value = (m.group(1) if m.groups() else m.group(0)).strip()
    return [{column: value.lower() if lower else value}]
