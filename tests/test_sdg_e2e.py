"""End to end with the embedded SmolLM2 teacher (in-process llama.cpp) on the bundled sample taxonomy."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from labrador.prepare.inputs import load_phases
from labrador.prepare.options import PrepareOptions
from labrador.sdg.context import GenerateOptions
from labrador.sdg.generate import GenerateRequest, generate
from labrador.sdg.output import record_schema
from labrador.sdg.pipeline import load_pipeline_set

pytestmark = pytest.mark.slow
SAMPLE = Path(__file__).resolve().parents[1] / "src" / "labrador" / "data" / "sample_taxonomy"
THREADS = 1  # one llama.cpp thread: on a shared, loaded CPU two threads spin on barriers and run 5-10x slower


def make_taxonomy(dest: Path, copy: bool = True) -> Path:
    if copy:
        shutil.copytree(SAMPLE, dest)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "sample"], cwd=dest, check=True)
    return dest


DOC = "knowledge/geography/towns/kelderwick/docs/kelderwick.md"


@pytest.fixture(scope="module")
def taxonomy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("tax") / "taxonomy"
    shutil.copytree(SAMPLE, dest)
    # The first two sections only (about 12 facts): the knowledge pipelines run the same blocks on a shorter
    # document, and the suite saves some 60 one-thread teacher calls.
    doc = dest / DOC
    doc.write_text(doc.read_text().split("## Government")[0])
    return make_taxonomy(dest, copy=False)


@pytest.fixture(scope="module")
def teacher_client():
    from labrador.llm import get_client

    client = get_client(None, n_threads=THREADS, n_ctx=2048)
    yield client
    client.close()


def validate_run(run_dir: Path) -> dict[str, list[dict]]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(record_schema())
    files: dict[str, list[dict]] = {}
    for path in sorted(run_dir.rglob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        for row in rows if not path.name.startswith("documents_") else []:  # chunks, not records
            errors = list(validator.iter_errors(row))
            assert not errors, f"{path.name}: {errors[0].message}"
        files[path.relative_to(run_dir).as_posix()] = rows
    return files


def test_simple_pipeline_writes_valid_files_for_all_leaf_kinds(taxonomy: Path, teacher_client, tmp_path: Path):
    options = GenerateOptions(scale_factor=1, max_num_tokens=64, chunk_size=1000, num_workers=4, seed=7)
    request = GenerateRequest(taxonomy, tmp_path / "datasets", taxonomy_base="empty", pipeline="simple",
                              options=options)
    result = generate(request, client=teacher_client)
    kinds = {leaf["kind"]: leaf for leaf in result.summary["leaves"]}
    assert set(kinds) == {"knowledge", "freeform_skill", "grounded_skill"}
    assert result.run_dir is not None and result.run_dir.name.endswith("smollm2-135m-instruct")
    files = validate_run(result.run_dir)
    stamp = result.run_dir.name.split("_smollm2")[0]
    for name in ("messages", "train", "test", "documents"):
        assert f"{name}_{stamp}.jsonl" in files
    tests = files[f"test_{stamp}.jsonl"]
    assert len(tests) == 15 + 5 + 5 and {t["metadata"]["teacher"] for t in tests} == {"human"}
    generated = files[f"messages_{stamp}.jsonl"]
    seeds = {t["user"] for t in tests}
    assert not any(r["messages"][1]["content"] in seeds for r in generated)
    for kind, leaf in kinds.items():
        assert leaf["rows"] > 0, f"{kind}: {leaf['error']}"
        rows = [r for r in generated if r["metadata"]["leaf_kind"] == kind]
        assert len(rows) == leaf["rows"]
        meta = rows[0]["metadata"]
        assert meta["pipeline"] == "simple" and meta["teacher"] == "smollm2-135m-instruct" and meta["lineage"]
    knowledge = [r for r in generated if r["metadata"]["leaf_kind"] == "knowledge"]
    facts = [r for r in knowledge if r["metadata"].get("closed_book")]
    qa = [r for r in knowledge if not r["metadata"].get("closed_book")]
    assert qa and all("Kelderwick" in r["messages"][1]["content"] for r in qa)  # the chunk is in the user turn
    # knowledge facts: the teacher's question alone, answered by a sentence of the document (or a table row)
    assert len(facts) >= 5, "the facts pipeline kept too few of the teacher's questions"
    doc = " ".join((taxonomy / DOC).read_text().split())
    for row in facts:
        question, answer = row["messages"][1]["content"], row["messages"][2]["content"]
        assert question.endswith("?") and "\n" not in question and row["unmask"] is False
        assert answer.split(". ")[0].rstrip(".") in doc.replace("*", "") or ": Founded" in answer
    # labrador.prepare mixes the run into the two phases: RAFT copies and replay of phase 1 in phase 2
    phases = load_phases(result.run_dir, PrepareOptions(seed=7))
    assert len(phases["knowledge"]) == kinds["knowledge"]["rows"] + kinds["knowledge"]["aux_rows"]
    raft = [r for r in phases["skills"] if r["metadata"]["dataset"] == "knowledge_p10"]
    assert len(raft) == len(qa) and all(r["messages"][1]["content"].startswith("Document:\n") for r in raft)
    stats = result.summary["teacher_stats"]
    assert stats["requests"] > 0 and 0 < stats["busy_seconds"] <= stats["wall_seconds"] * 1.05
    # the same run again costs no teacher call and writes the same rows
    again = generate(request, client=teacher_client)
    assert again.summary["teacher_stats"]["requests"] == 0
    assert validate_run(again.run_dir)[f"messages_{again.run_dir.name.split('_smollm2')[0]}.jsonl"] == generated


def test_full_pipeline_runs_every_block(taxonomy: Path, teacher_client, tmp_path: Path, pipeline_without_facts):
    options = GenerateOptions(scale_factor=1, max_num_tokens=48, chunk_size=1000, num_workers=4, seed=3)
    # without knowledge_facts.yaml: the facts blocks run with the real teacher in the test above
    full = str(pipeline_without_facts(tmp_path / "full", "full"))
    request = GenerateRequest(taxonomy, tmp_path / "datasets", taxonomy_base="empty", pipeline=full,
                              options=options)
    result = generate(request, client=teacher_client)
    pipes = load_pipeline_set(full)
    ran = {(b["leaf"], b["block"]) for b in result.summary["blocks"]}
    for leaf in result.summary["leaves"]:
        expected = [b.name for pipe in pipes[leaf["kind"]].pipelines for b in pipe.blocks]
        missing = [name for name in expected if (leaf["leaf"], name) not in ran]
        assert not missing, f"{leaf['leaf']}: blocks never ran: {missing} ({leaf['error']})"
        assert leaf["error"] is None or "unexpected" not in leaf["error"]
        if not leaf["rows"]:  # an empty leaf must say why (a judge that filtered everything, ...)
            assert leaf["error"]
    judges = [b for b in result.summary["blocks"] if b["block"].startswith("judge")]
    assert judges and sum(b["requests"] for b in judges) > 0
    knowledge = next(leaf for leaf in result.summary["leaves"] if leaf["kind"] == "knowledge")
    assert knowledge["aux_rows"] > 0  # summaries are generated whatever the judges decide
    if result.run_dir is not None:
        files = validate_run(result.run_dir)
        aux = [r for name, rows in files.items() if name.endswith("_summaries.jsonl") for r in rows
               if "summary_kind" in r["metadata"]]
        assert aux and all(r["unmask"] for r in aux)
