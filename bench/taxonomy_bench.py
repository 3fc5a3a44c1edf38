"""Validate 1,000 generated taxonomy leaves; report seconds and leaves/s (target: under 5 s).

    .venv/bin/python bench/taxonomy_bench.py [--leaves 1000] [--rounds 3]

Candidate: labrador's validator (libyaml C composer with position tracking, jsonschema validators compiled
once, text rules, all checks), through `load_leaves(root, "empty")` in this process, and through the real
`ilab taxonomy diff --taxonomy-base empty` command (interpreter start-up included).
Baseline, run interleaved in the same process so machine load affects both alike: what InstructLab's
schema package does per file minus its yamllint/yq subprocesses -- pure-Python `yaml.safe_load` and a
Draft 2020-12 validator built for every file.
`--yamllint` instead compares labrador's YAML text rules with yamllint (`pip install yamllint`) set to the
same rules: what each reports on a few bad files, and the time per file (docs/taxonomy.md, "Text rules").
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("moon orbit river town potter glaze market ferry census clay harbour bridge summer winter north south "
         "history science people record field stone water light quiet garden letter station captain").split()


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def knowledge(rng: random.Random, i: int) -> str:
    lines = ["version: 3", f"created_by: user{i}", "domain: Geography", f"document_outline: {sentence(rng, 12)}",
             "seed_examples:"]
    for s in range(5):
        lines += ["  - context: |", f"      {sentence(rng, 14)}", f"      {sentence(rng, 14)}",
                  "    questions_and_answers:"]
        for q in range(3):
            lines += [f"      - question: Q{s}{q} {sentence(rng, 8)}", f"        answer: {sentence(rng, 10)}"]
    lines += ["document:", "  folder: docs", "  patterns:", '    - "*.md"']
    return "\n".join(lines) + "\n"


def skill(rng: random.Random, i: int, grounded: bool) -> str:
    lines = ["version: 3", f"created_by: user{i}", f"task_description: {sentence(rng, 10)}", "seed_examples:"]
    for s in range(5):
        first = "  - "
        if grounded:
            lines.append(f"  - context: {sentence(rng, 20)}")
            first = "    "
        lines += [f"{first}question: Q{s} {sentence(rng, 9)}", f"    answer: {sentence(rng, 15)}"]
    return "\n".join(lines) + "\n"


def generate(root: Path, count: int) -> list[Path]:
    rng = random.Random(7)
    files = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            rel, text = f"knowledge/topic{i // 100}/leaf{i}/qna.yaml", knowledge(rng, i)
        elif kind == 1:
            rel, text = f"compositional_skills/writing/w{i // 100}/leaf{i}/qna.yaml", skill(rng, i, False)
        else:
            rel, text = f"compositional_skills/grounded/g{i // 100}/leaf{i}/qna.yaml", skill(rng, i, True)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        files.append(path)
    return files


def baseline(files: list[Path]) -> int:
    """Per file: pure-Python safe_load + a validator built for the file (as instructlab-schema does)."""
    import yaml
    from jsonschema import Draft202012Validator

    from labrador.taxonomy.schema import schema_for

    errors = 0
    for path in files:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)  # noqa: S506 - SafeLoader
        name = "knowledge" if "knowledge" in path.parts else "compositional_skills"
        validator = Draft202012Validator(json.loads(json.dumps(schema_for(3, name))))
        errors += sum(1 for _ in validator.iter_errors(data))
    return errors


def candidate(root: Path) -> int:
    from labrador.taxonomy import load_leaves

    return len(load_leaves(root, "empty"))


BAD_FILES = {
    "trailing spaces": "version: 3\ncreated_by: me   \n",
    "tab inside a text block": "version: 3\ntask_description: |\n  a\tb\n",
    "tab as indentation": "version: 3\nseed_examples:\n\t- question: q\n",
    "long line": "version: 3\ntask_description: " + "word " * 40 + "\n",
    "long URL (allowed)": "version: 3\nsource: https://example.com/" + "a" * 150 + "\n",
    "no newline at the end": "version: 3\ncreated_by: me",
    "4 blank lines": "version: 3\n\n\n\n\ncreated_by: me\n",
}
YAMLLINT_SAME_RULES = """rules:
  line-length: {max: 120, level: warning, allow-non-breakable-words: true, allow-non-breakable-inline-mappings: true}
  trailing-spaces: {level: error}
  new-line-at-end-of-file: {level: error}
  empty-lines: {max: 2, max-start: 1000, max-end: 1000, level: warning}
"""


def compare_yamllint(files: list[Path]) -> None:
    """labrador's text rules and yamllint's, on BAD_FILES (reports) and on the generated files (time)."""
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    from labrador.taxonomy.yamlrules import check_text, load_rules

    config, rules = YamlLintConfig(YAMLLINT_SAME_RULES), load_rules(None)
    for name, text in BAD_FILES.items():
        print(f"## {name}")
        for hit in check_text(text, rules):
            print(f"  labrador {hit.line}:{hit.column} {hit.level}: {hit.message}")
        for problem in linter.run(text, config):
            print(f"  yamllint {problem.line}:{problem.column} {problem.level}: {problem.desc} ({problem.rule})")
    texts = [path.read_text(encoding="utf-8") for path in files]
    t0 = time.perf_counter()
    ours = sum(len(check_text(text, rules)) for text in texts)
    t1 = time.perf_counter()
    theirs = sum(len(list(linter.run(text, config))) for text in texts)
    t2 = time.perf_counter()
    print(f"{len(texts)} generated leaves: labrador {(t1 - t0) / len(texts) * 1e3:.2f} ms/file ({ours} hits), "
          f"yamllint {(t2 - t1) / len(texts) * 1e3:.2f} ms/file ({theirs} hits), {(t2 - t1) / (t1 - t0):.0f}x")


def cpu_with_children() -> float:
    """CPU seconds of this process plus its finished children (the worker processes of load_leaves)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--yamllint", action="store_true", help="compare the text rules with yamllint instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "taxonomy"
        files = generate(root, args.leaves)
        if args.yamllint:
            compare_yamllint(files)
            return
        first = time.perf_counter()
        assert candidate(root) == args.leaves  # first call: includes jsonschema import and schema compilation
        cold = time.perf_counter() - first
        base_times, cand_times, cand_cpu = [], [], []
        for _ in range(args.rounds):  # interleaved so that other load on the machine hits both alike
            t0 = time.perf_counter()
            assert baseline(files) == 0
            base_times.append(time.perf_counter() - t0)
            t0, c0 = time.perf_counter(), cpu_with_children()
            assert candidate(root) == args.leaves
            cand_times.append(time.perf_counter() - t0)
            cand_cpu.append(cpu_with_children() - c0)
        ilab = str(Path(sys.executable).with_name("ilab"))
        t0, children = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run([ilab, "taxonomy", "diff", "--taxonomy-path", str(root), "--taxonomy-base", "empty",
                               "--quiet"], capture_output=True, text=True)
        cli = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cli_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
        assert proc.returncode == 0, proc.stdout + proc.stderr
    base, cand = statistics.median(base_times), statistics.median(cand_times)
    print(f"leaves: {args.leaves} (1/3 knowledge, 1/3 freeform skills, 1/3 grounded skills), rounds: {args.rounds}")
    print(f"candidate load_leaves (warm, median): {cand:.3f} s = {args.leaves / cand:,.0f} leaves/s")
    print(f"candidate load_leaves CPU time, this process + workers (median): {statistics.median(cand_cpu):.3f} s")
    print(f"candidate load_leaves (first call, incl. imports): {cold:.3f} s")
    print(f"candidate CLI `ilab taxonomy diff --taxonomy-base empty` (subprocess, end to end): {cli:.3f} s "
          f"= {args.leaves / cli:,.0f} leaves/s (target < 5 s: {'met' if cli < 5 else 'MISSED'}); CPU time of "
          f"the command and its workers: {cli_cpu:.3f} s")
    print(f"baseline safe_load + per-file validator (median, schema checks only): {base:.3f} s "
          f"= {args.leaves / base:,.0f} leaves/s")
    print(f"ratio baseline/candidate: {base / cand:.2f}x (candidate also runs text rules and all extra checks)")


if __name__ == "__main__":
    main()
