"""Text-level lint rules in the spirit of yamllint, plus labrador's seed-size rule.

Rules and defaults (override with ``--yaml-rules FILE``, a YAML file ``rules: {name: ...}``; each value is
``disable``, ``enable`` or a mapping with ``level: error|warning`` and rule options):

- ``line-length``: lines longer than ``max`` (120) characters, warning. A line that is one long word (a URL),
  alone or after ``- ``, ``# `` or ``key: ``, is allowed, since it cannot be broken.
- ``trailing-spaces``: spaces or tabs at the end of a line, error.
- ``tabs``: tab characters (YAML needs spaces for indentation), error.
- ``new-line-at-end-of-file``: the last line must end with a newline, error.
- ``empty-lines``: more than ``max`` (2) blank lines in a row, warning.
- ``seed-tokens``: a seed example's context + question + answer estimated above ``max`` (1000) tokens, error.

Other yamllint rule names (indentation, truthy, ...) are accepted and ignored; duplicate keys are always errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labrador.errors import TaxonomyError, UserFileError
from labrador.userfiles import YAML_FILE, line_and_column, read_text

DEFAULT_RULES: dict[str, dict[str, Any]] = {
    "line-length": {"level": "warning", "max": 120},
    "trailing-spaces": {"level": "error"},
    "tabs": {"level": "error"},
    "new-line-at-end-of-file": {"level": "error"},
    "empty-lines": {"level": "warning", "max": 2},
    "seed-tokens": {"level": "error", "max": 1000},
}
LEVELS = ("error", "warning")
# yamllint rules and options labrador does not implement: accepted and ignored, so a yamllint config written for
# InstructLab (e.g. `{extends: relaxed, rules: {line-length: disable}}`) works unchanged.
YAMLLINT_ONLY_RULES = frozenset({
    "anchors", "braces", "brackets", "colons", "commas", "comments", "comments-indentation", "document-end",
    "document-start", "empty-values", "float-values", "hyphens", "indentation", "key-duplicates", "key-ordering",
    "new-lines", "octal-values", "quoted-strings", "truthy"})
YAMLLINT_ONLY_OPTIONS = {"line-length": {"allow-non-breakable-words", "allow-non-breakable-inline-mappings"},
                         "empty-lines": {"max-start", "max-end"}}
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class RuleHit:
    line: int
    column: int
    level: str
    message: str


def load_rules(path: str | Path | None) -> dict[str, dict[str, Any]]:
    """Defaults merged with the rules file; None = defaults. Bad files raise TaxonomyError."""
    rules = {name: dict(opts) for name, opts in DEFAULT_RULES.items()}
    if path is None:
        return rules
    from labrador.yamlnodes import load

    path = Path(path)
    try:
        text = read_text(path, YAML_FILE)
    except UserFileError as err:
        raise TaxonomyError(f"{path}: the lint rules file {err.problem}") from None
    raw = load(text, path, TaxonomyError, kind="lint rules file")
    if raw is None:
        return rules
    if not isinstance(raw, dict) or not isinstance(raw.get("rules", {}), dict):
        raise TaxonomyError(f"{path}: the lint rules file must look like 'rules: {{line-length: {{max: 100}}}}'.")
    for name, value in (raw.get("rules") or {}).items():
        if name in YAMLLINT_ONLY_RULES:
            continue
        if name not in rules:
            raise TaxonomyError(f"{path}: unknown lint rule '{name}'; known rules: {', '.join(DEFAULT_RULES)}.")
        if value in ("disable", False):
            rules[name]["level"] = "off"
        elif value in ("enable", True, None):
            pass
        elif isinstance(value, dict):
            for opt, opt_value in value.items():
                if opt in YAMLLINT_ONLY_OPTIONS.get(name, ()):
                    continue
                if opt not in DEFAULT_RULES[name]:
                    known = ", ".join(DEFAULT_RULES[name])
                    raise TaxonomyError(f"{path}: rule '{name}' has no option '{opt}' (options: {known}).")
                if opt == "level" and opt_value not in LEVELS:
                    raise TaxonomyError(f"{path}: rule '{name}': level must be error or warning, "
                                        f"not {opt_value!r}.")
                if opt == "max" and (not isinstance(opt_value, int) or isinstance(opt_value, bool) or opt_value < 0):
                    raise TaxonomyError(f"{path}: rule '{name}': max must be a whole number, not {opt_value!r}.")
                rules[name][opt] = opt_value
        else:
            raise TaxonomyError(f"{path}: rule '{name}' must be enable, disable or a mapping of options, "
                                f"not {value!r}.")
    return rules


def estimate_tokens(text: str) -> int:
    """Approximate token count: max(characters / 4, words * 4 / 3), rounded up.

    Chosen over a real tokenizer so validation needs no model and stays fast; for English prose it is close
    to Llama/SmolLM-style BPE counts and errs on the high side for code and numbers.
    """
    words = len(_WORD.findall(text))
    return max(-(-len(text) // 4), -(-words * 4 // 3))


_TRAILING = re.compile(r"[ \t]+\r?$", re.M)
_BLANK_RUN = re.compile(r"(?:^[ \t]*\r?\n)+", re.M)


def check_text(text: str, rules: dict[str, dict[str, Any]]) -> list[RuleHit]:
    """Line-based rules over the decoded text; whole-text regexes keep this fast on large files."""
    hits: list[RuleHit] = []
    length, trailing, tabs, blank = (rules["line-length"], rules["trailing-spaces"], rules["tabs"],
                                     rules["empty-lines"])
    if length["level"] != "off":
        longer = length["max"] + 1
        for match in re.finditer(rf"^[^\n]{{{longer},}}$", text, re.M):
            line = match.group().rstrip("\r")
            if len(line) > length["max"] and not _non_breakable(line):
                number = text.count("\n", 0, match.start()) + 1
                hits.append(RuleHit(number, length["max"] + 1, length["level"],
                                    f"Line is {len(line)} characters long (the limit is {length['max']}); break "
                                    "it, for example with a '|' block for long text."))
    # str containment checks first: the regexes try every position, and clean files are the common case
    spaced = " \n" in text or "\t\n" in text or " \r\n" in text or text.endswith((" ", "\t"))
    if trailing["level"] != "off" and spaced:
        for match in _TRAILING.finditer(text):
            hits.append(RuleHit(*line_and_column(text, match.start()), trailing["level"],
                                "Line ends with spaces; delete the spaces after the last character."))
    if tabs["level"] != "off" and "\t" in text:
        seen_lines: set[int] = set()
        for match in re.finditer("\t", text):
            number, column = line_and_column(text, match.start())
            if number not in seen_lines:
                seen_lines.add(number)
                hits.append(RuleHit(number, column, tabs["level"],
                                    "Line contains a tab character; YAML needs spaces, so replace the tab with "
                                    "spaces."))
    if blank["level"] != "off" and (spaced or "\n" * (blank["max"] + 1) in text
                                    or "\r\n" * (blank["max"] + 1) in text):
        for match in _BLANK_RUN.finditer(text):
            run = match.group().count("\n")
            if run > blank["max"] and match.end() < len(text):  # blank lines at the very end are not a run
                number = text.count("\n", 0, match.start()) + 1 + blank["max"]
                hits.append(RuleHit(number, 1, blank["level"],
                                    f"More than {blank['max']} blank lines in a row; delete the extra ones."))
    eof = rules["new-line-at-end-of-file"]
    if eof["level"] != "off" and text and not text.endswith("\n"):
        hits.append(RuleHit(*line_and_column(text, len(text)), eof["level"],
                            "The file does not end with a line break; add an empty line at the end."))
    hits.sort(key=lambda hit: (hit.line, hit.column))
    return hits


_PREFIX = re.compile(r"^(?:- +|# *)?(?:[\w.-]+: +)?")


def _non_breakable(line: str) -> bool:
    """True for a line that is indentation, then '- ', '# ' or 'key: ', then one word (such as a URL): it
    cannot be broken (yamllint's allow-non-breakable-words and -inline-mappings)."""
    body = _PREFIX.sub("", line.strip(), count=1)
    return " " not in body and "\t" not in body
