"""Every file a user hands labrador is read through `labrador.userfiles` (regular files only, inside their tree,
size-capped, UTF-8 with positions) and YAML is parsed by `labrador.yamlnodes` only.

This walks src/ for direct reads (`open(`, `.open(` for reading, `.read_text(`, `.read_bytes(`, `os.fdopen(`,
`yaml.safe_load(` and the other yaml loaders) and fails on any that is not listed below with a reason. A new
entry needs a reason why the file is not user-supplied; a file a user supplies goes through userfiles instead.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "labrador"
READERS = {"userfiles.py", "yamlnodes.py"}  # the reader and the parser themselves
READ_CALLS = {"open", "read_text", "read_bytes", "fdopen"}
YAML_CALLS = {"safe_load", "load", "full_load", "unsafe_load", "safe_load_all", "load_all", "compose", "parse"}

OWN = "labrador's own output or state (written by labrador, under its run, cache or checkpoint folders)"
MODEL = "model files (config.json, tokenizer.json, GGUF headers): a model folder is loaded by transformers / " \
        "llama.cpp as well and is trusted as code is"
PACKAGE = "package data shipped with labrador"
SYSTEM = "/proc files of this machine"
ALLOWED: dict[tuple[str, str], tuple[int, str]] = {
    ("cli/model_train.py", "read_text"): (1, OWN + " (the training journal)"),
    ("models/convert_hf_gguf.py", "read_text"): (2, MODEL),
    ("models/convert_vocab.py", "read_text"): (2, MODEL),
    ("models/gguf_meta.py", "open"): (1, MODEL),
    ("models/info.py", "open"): (1, MODEL),
    ("models/info.py", "read_text"): (1, MODEL),
    ("pipeline/report.py", "read_text"): (1, OWN + " (metrics.jsonl of a run)"),
    ("pipeline/stamps.py", "read_text"): (1, OWN + " (a stage's stamp)"),
    ("sdg/output.py", "read_text"): (1, PACKAGE + " (the record schema)"),
    ("serve/background.py", "read_bytes"): (1, SYSTEM),
    ("serve/background.py", "read_text"): (4, OWN + " (server state, ready file and log) and " + SYSTEM),
    ("sysinfo.py", "open"): (1, SYSTEM),
    ("taxonomy/schema.py", "read_text"): (1, PACKAGE + " (the taxonomy JSON schemas)"),
    ("train/checkpoint.py", "read_text"): (1, OWN + " (checkpoint metadata)"),
    ("train/compare.py", "read_text"): (1, OWN + " (the training journal)"),
    ("train/data.py", "open"): (1, "hashes a data file that read_conversations has read through userfiles"),
    ("train/metrics.py", "open"): (1, OWN + " (cutting a torn last line off metrics.jsonl)"),
    ("train/metrics.py", "read_text"): (1, OWN + " (metrics.jsonl)"),
    ("train/run.py", "read_text"): (2, OWN + " (the journal and the options saved in a run for --resume)"),
    ("train/run.py", "yaml.safe_load"): (1, OWN + " (the options saved in a run for --resume)"),
    ("train/student.py", "open"): (1, MODEL + " (hashing the student's weights)"),
    ("train/student.py", "read_text"): (1, OWN + " (a cached hash)"),
    ("train/worker.py", "read_text"): (1, OWN + " (options handed to a torchrun worker)"),
}


def _writes(call: ast.Call) -> bool:
    """`.open("w")`, `open(path, "a")`, `os.fdopen(fd, "wb")`: writing, not reading."""
    modes = [arg for arg in call.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
    modes += [kw.value for kw in call.keywords if kw.arg == "mode" and isinstance(kw.value, ast.Constant)]
    return any(isinstance(m.value, str) and set(m.value) & set("wax") for m in modes)


def _read_calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "open" or isinstance(func, ast.Attribute) and \
                func.attr in READ_CALLS:
            if not _writes(node):
                found.append(func.id if isinstance(func, ast.Name) else func.attr)
        elif isinstance(func, ast.Attribute) and func.attr in YAML_CALLS and isinstance(func.value, ast.Name) \
                and func.value.id == "yaml":
            found.append(f"yaml.{func.attr}")
    return found


def direct_reads() -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel not in READERS:
            counts.update((rel, call) for call in _read_calls(ast.parse(path.read_text(encoding="utf-8"))))
    return counts


def test_user_files_are_read_only_through_userfiles() -> None:
    counts = direct_reads()
    unlisted = {key: n for key, n in counts.items() if key not in ALLOWED}
    more = {key: (n, ALLOWED[key][0]) for key, n in counts.items() if key in ALLOWED and n > ALLOWED[key][0]}
    assert not unlisted, ("direct file reads outside labrador.userfiles (read user files through it, or list the "
                          f"call in ALLOWED with the reason it is not user-supplied): {unlisted}")
    assert not more, f"more direct reads than ALLOWED lists (found, allowed): {more}"


def test_allow_list_has_no_stale_entries() -> None:
    counts = direct_reads()
    stale = {key: (counts.get(key, 0), n) for key, (n, _) in ALLOWED.items() if counts.get(key, 0) < n}
    assert not stale, f"ALLOWED lists reads that are gone (found, allowed); lower or remove them: {stale}"
    assert all(reason.strip() for _, reason in ALLOWED.values())


def test_the_scan_finds_a_direct_read() -> None:
    tree = ast.parse("import yaml\nyaml.safe_load(p.read_text())\nopen(p)\nopen(p, 'w')\nq.open('rb')\n")
    assert sorted(_read_calls(tree)) == ["open", "open", "read_text", "yaml.safe_load"]
