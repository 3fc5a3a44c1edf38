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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labrador.errors import TaxonomyError

DEFAULT_RULES: dict[str, dict[str, Any]] = {
    "line-length": {"level": "warning", "max": 120},
    "trailing-spaces": {"level": "error"},
    "tabs": {"level": "error"},
    "new-line-at-end-of-file": {"level": "error"},
    "empty-lines": {"level": "warning", "max": 2},
    "seed-tokens": {"level": "error", "max": 1000},
}
LEVELS = ("error", "warning")
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
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise TaxonomyError(f"{path}: the lint rules file cannot be read ({err}); check the --yaml-rules path.") \
            from None
    except yaml.YAMLError as err:
        raise TaxonomyError(f"{path}: the lint rules file is not valid YAML ({' '.join(str(err).split())}).") \
            from None
    if raw is None:
        return rules
    if not isinstance(raw, dict) or not isinstance(raw.get("rules", {}), dict):
        raise TaxonomyError(f"{path}: the lint rules file must look like 'rules: {{line-length: {{max: 100}}}}'.")
    for name, value in (raw.get("rules") or {}).items():
        if name not in rules:
            raise TaxonomyError(f"{path}: unknown lint rule '{name}'; known rules: {', '.join(DEFAULT_RULES)}.")
        if value in ("disable", False):
            rules[name]["level"] = "off"
        elif value in ("enable", True, None):
            pass
        elif isinstance(value, dict):
            for opt, opt_value in value.items():
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


def check_text(text: str, rules: dict[str, dict[str, Any]]) -> list[RuleHit]:
    """Line-based rules; the file is already known to be decoded text."""
    hits: list[RuleHit] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    length, trailing, tabs, blank = (rules["line-length"], rules["trailing-spaces"], rules["tabs"],
                                     rules["empty-lines"])
    blank_run = 0
    for number, raw_line in enumerate(lines, start=1):
        line = raw_line[:-1] if raw_line.endswith("\r") else raw_line
        if length["level"] != "off" and len(line) > length["max"] and not _non_breakable(line):
            hits.append(RuleHit(number, length["max"] + 1, length["level"],
                                f"Line is {len(line)} characters long (the limit is {length['max']}); break it, "
                                "for example with a '|' block for long text."))
        if trailing["level"] != "off" and line != line.rstrip(" \t"):
            hits.append(RuleHit(number, len(line.rstrip(" \t")) + 1, trailing["level"],
                                "Line ends with spaces; delete the spaces after the last character."))
        if tabs["level"] != "off" and "\t" in line:
            hits.append(RuleHit(number, line.index("\t") + 1, tabs["level"],
                                "Line contains a tab character; YAML needs spaces, so replace the tab with "
                                "spaces."))
        if line.strip() == "":
            blank_run += 1
            if blank_run == blank["max"] + 1 and blank["level"] != "off":
                hits.append(RuleHit(number, 1, blank["level"],
                                    f"More than {blank['max']} blank lines in a row; delete the extra ones."))
        else:
            blank_run = 0
    eof = rules["new-line-at-end-of-file"]
    if eof["level"] != "off" and text and not text.endswith("\n"):
        last = text.split("\n")[-1]
        hits.append(RuleHit(len(text.split("\n")), len(last) + 1, eof["level"],
                            "The file does not end with a line break; add an empty line at the end."))
    return hits


_PREFIX = re.compile(r"^(?:- +|# *)?(?:[\w.-]+: +)?")


def _non_breakable(line: str) -> bool:
    """True for a line that is indentation, then '- ', '# ' or 'key: ', then one word (such as a URL): it
    cannot be broken (yamllint's allow-non-breakable-words and -inline-mappings)."""
    body = _PREFIX.sub("", line.strip(), count=1)
    return " " not in body and "\t" not in body
