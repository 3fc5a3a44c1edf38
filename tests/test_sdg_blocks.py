"""Unit tests of the SDG engine: every block, the table, the prompt loader, pipelines, chunking, quality guards.

LLM-block tests replay RECORDED real SmolLM2 outputs (tests/fixtures/sdg/recorded_outputs.jsonl) through a
replaying client; the real teacher runs in tests/test_sdg_e2e.py.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest

from labrador.errors import DataError
from labrador.llm.base import Completion, SamplingParams
from labrador.llm.cache import CallCache
from labrador.sdg.blocks import LLMBlock
from labrador.sdg.chunking import chunk_markdown
from labrador.sdg.context import GenerateOptions, LeafContext, fit_to_context
from labrador.sdg.pipeline import load_pipeline, load_pipeline_set, pipeline_dir
from labrador.sdg.prompts import parse_regex, parse_tagged
from labrador.sdg.quality import Decontaminator, answer_problem, guard_rows, jaccard, shingles
from labrador.sdg.registry import block_class
from labrador.sdg.table import Table
from labrador.sdg.teacher import Teacher, call_key

FIXTURES = Path(__file__).parent / "fixtures" / "sdg"


def recorded() -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / "recorded_outputs.jsonl").read_text().splitlines() if line]


class ReplayClient:
    """Answers every request with the next recorded text (a stand-in only for parsing/filtering tests)."""

    model_name = "replay"

    def __init__(self, texts: list[str]) -> None:
        self.texts, self.calls = texts, 0

    async def _next(self) -> Completion:
        text = self.texts[self.calls % len(self.texts)]
        self.calls += 1
        return Completion([text], prompt_tokens=10, completion_tokens=len(text) // 4)

    async def achat(self, messages, params=None):
        return await self._next()

    async def acomplete(self, prompt, params=None):
        return await self._next()


def ctx_for(client, tmp_path: Path, **options) -> LeafContext:
    teacher = Teacher(client, workers=4, cache=CallCache(tmp_path / "cache.sqlite"))
    return LeafContext("skills/test", "test/pipe", teacher, GenerateOptions(seed=3, **options))


def block(kind: str, **config):
    return block_class(kind)(f"test_{kind}", config)


def run(b, table: Table, ctx: LeafContext) -> Table:
    return asyncio.run(b.run(table, ctx))


# ------------------------------------------------------------------------------------------- recorded parsing

@pytest.mark.parametrize("sample", recorded(), ids=lambda s: s["name"])
def test_parser_on_recorded_teacher_outputs(sample: dict) -> None:
    config = {"prompt": sample["prompt"], "output_cols": sample["fields"], "parser": sample["parser"]}
    if sample.get("pattern"):
        config["pattern"] = sample["pattern"]
    items = LLMBlock("recorded", config).parse(sample["text"])
    assert len(items) == sample["expected_items"], items
    for item in items:
        assert set(item) == set(sample["fields"]) and all(v.strip() for v in item.values())
    if sample.get("expected_first"):
        assert items[0] == sample["expected_first"]


def test_parser_handles_markdown_decoration_and_missing_fields() -> None:
    text = "**Question:** What is 2+2?\n**Answer:** 4\n\n1. Question - Capital of France?\nAnswer: Paris\nQuestion: orphan"
    items = parse_tagged(text, ["question", "response"], ["Question:", "Answer:"], ["", ""])
    assert items == [{"question": "What is 2+2?", "response": "4"},
                     {"question": "Capital of France?", "response": "Paris"}]
    assert parse_tagged("no tags at all", ["q", "a"], ["Q:", "A:"], ["", ""]) == []
    assert parse_tagged("Answer: only", ["q", "a"], ["Question:", "Answer:"], ["", ""]) == []
    assert parse_tagged("  Text: a story\nmore", ["context"], [""], ["Question:"]) == [{"context": "a story\nmore"}]
    assert parse_regex("I think YES, it is.", r"\b(yes|no)\b", "j") == [{"j": "yes"}]
    assert parse_regex("no digits", r"\b([1-3])\b", "s") == []


# -------------------------------------------------------------------------------------------------- LLM block

def test_llm_block_fans_out_counts_failures_and_records_lineage(tmp_path: Path) -> None:
    texts = [" What is big?\nAnswer: large\n\nQuestion: What is small?\nAnswer: tiny", "garbage without tags"]
    client = ReplayClient(texts)
    ctx = ctx_for(client, tmp_path)
    seeds = [{"question": "q1", "answer": "a1", "context": ""}, {"question": "q2", "answer": "a2", "context": ""}]
    table = Table([{"task_description": "synonyms", "_icl_seeds": seeds, "_seed_index": 0, "_num_samples": 2}])
    b = LLMBlock("gen", {"prompt": "freeform_qa", "output_cols": ["question", "response"], "n": "scale"})
    out = run(b, table, ctx)
    stats = ctx.stats[-1]
    assert stats.requests == 2 and stats.parse_failures == 1 and stats.rows_out == 2
    assert [r["question"] for r in out] == ["What is big?", "What is small?"]
    meta = out[0]["_meta"]
    assert meta["block"] == "gen" and len(meta["prompt_hash"]) == 12 and meta["sample_index"] in (0, 1)
    # the same run again is served from the cache: no new teacher calls, identical rows
    again = run(b, table, ctx_for(client, tmp_path))
    assert client.calls == 2 and again.rows == out.rows


def test_llm_block_prompt_shows_own_seed_and_shrinks_for_long_seeds(tmp_path: Path) -> None:
    ctx = ctx_for(ReplayClient(["x"]), tmp_path, max_prompt_tokens=200)
    long_seed = {"question": "L" * 2000, "answer": "a", "context": ""}
    own = {"question": "own question", "answer": "own answer", "context": ""}
    row = {"task_description": "t", "_icl_seeds": [own, long_seed]}
    b = LLMBlock("gen", {"prompt": "freeform_qa", "output_cols": ["question", "response"], "num_examples": 2})
    prompt = b.messages(row, ctx, 0, 0)
    assert "own question" in prompt and "L" * 100 not in prompt
    with pytest.raises(DataError, match="task_description"):
        b.messages({"_icl_seeds": [own]}, ctx, 0, 0)


def test_llm_block_config_errors() -> None:
    with pytest.raises(DataError, match="start_tags"):
        LLMBlock("gen", {"prompt": "freeform_qa", "output_cols": ["question"]})
    with pytest.raises(DataError, match="missing config"):
        LLMBlock("gen", {"prompt": "freeform_qa"})
    with pytest.raises(DataError, match="not found"):
        LLMBlock("gen", {"prompt": "no_such_prompt", "output_cols": ["x"]})


# ------------------------------------------------------------------------------------------- simple blocks

def test_filter_converts_types_drops_unconvertible_and_warns_when_empty(tmp_path: Path) -> None:
    ctx = ctx_for(ReplayClient(["x"]), tmp_path)
    table = Table([{"score": "3"}, {"score": " 2 "}, {"score": "great"}, {"score": 1}])
    out = run(block("filter", column="score", value=2, operation="ge", convert="int"), table, ctx)
    assert [r["score"] for r in out] == ["3", " 2 "] and ctx.stats[-1].filtered == 2
    out = run(block("filter", column="score", value=["3", "1"], operation="in", convert="str"), table, ctx)
    assert len(out) == 2
    out = run(block("filter", column="score", value=9, operation="ge", convert="float"), table, ctx)
    assert len(out) == 0 and "removed all 4 rows" in ctx.stats[-1].warning
    with pytest.raises(DataError, match=r"\['judgment'\] do not exist"):
        run(block("filter", column="judgment", value="yes"), table, ctx)


def test_column_blocks(tmp_path: Path) -> None:
    ctx = ctx_for(ReplayClient(["x"]), tmp_path)
    table = Table([{"a": "1", "b": "2", "_meta": {}}, {"a": "3", "b": ""}])
    assert run(block("rename_columns", columns={"a": "x"}), table, ctx).columns == ["x", "b", "_meta"]
    assert run(block("duplicate_columns", columns={"a": "c"}), table, ctx).column("c") == ["1", "3"]
    assert run(block("combine_columns", columns=["a", "b"], output="ab", separator="+"), table, ctx).column(
        "ab") == ["1+2", "3"]
    assert run(block("combine_columns", template="<{a}|{b}>", output="t"), table, ctx).column("t") == [
        "<1|2>", "<3|>"]
    assert "b" not in run(block("drop_columns", columns=["b"]), table, ctx).columns
    assert run(block("select_columns", columns=["a"]), table, ctx).columns == ["a", "_meta"]
    with pytest.raises(DataError, match="do not exist"):
        run(block("rename_columns", columns={"zz": "y"}), table, ctx)


def test_sample_and_flatten(tmp_path: Path) -> None:
    ctx = ctx_for(ReplayClient(["x"]), tmp_path)
    table = Table([{"i": i} for i in range(10)])
    first = run(block("sample", n=4), table, ctx)
    assert len(first) == 4 and first.rows == run(block("sample", n=4), table, ctx).rows
    assert [r["i"] for r in first] == sorted(r["i"] for r in first)
    assert len(run(block("sample", fraction=0.5), table, ctx)) == 5
    wide = Table([{"doc": "d", "s1": "one", "s2": ["two", "three"], "s3": ""}])
    out = run(block("flatten", columns=["s1", "s2", "s3"], value_name="summary", var_name="kind"), wide, ctx)
    assert [(r["kind"], r["summary"], r["doc"]) for r in out] == [("s1", "one", "d"), ("s2", "two", "d"),
                                                                  ("s2", "three", "d")]


def test_table_basics() -> None:
    t = Table([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
    assert len(t) == 2 and [r["b"] for r in t] == ["x", "y"]
    assert len(t.filter(lambda r: r["a"] > 1)) == 1 and len(t.concat(t)) == 4
    Table().require("anything")  # an empty table has every column


# --------------------------------------------------------------------------------------------------- pipelines

@pytest.mark.parametrize("name", ["simple", "full"])
def test_builtin_pipelines_load(name: str) -> None:
    pipes = load_pipeline_set(name)
    assert {"knowledge", "freeform_skill", "grounded_skill"} <= set(pipes)
    if name == "full":
        kinds = {b.kind for flow in pipes.values() for p in flow.pipelines for b in p.blocks}
        assert {"llm", "filter", "flatten", "drop_columns", "duplicate_columns", "combine_columns"} <= kinds


def test_pipeline_errors_name_file(tmp_path: Path) -> None:
    bad = tmp_path / "knowledge.yaml"
    bad.write_text("blocks:\n  - type: teleport\n")
    with pytest.raises(DataError, match="unknown type 'teleport'"):
        load_pipeline(bad, "x")
    bad.write_text("blocks: [oops")
    with pytest.raises(DataError, match="knowledge.yaml:"):
        load_pipeline(bad, "x")
    with pytest.raises(DataError, match="not a built-in pipeline"):
        load_pipeline_set(str(tmp_path / "missing"))


@pytest.mark.parametrize("name", ["simple", "full"])
def test_leaf_flows_are_declared_in_the_index(name: str, tmp_path: Path) -> None:
    flows = load_pipeline_set(name)
    knowledge = flows["knowledge"]
    expected = (["knowledge_aux"] if name == "full" else []) + ["knowledge_facts", "knowledge"]
    assert [s.key for s in knowledge.steps] == expected  # run order: summaries, facts, then Q&A
    assert knowledge.rows == ["knowledge", "knowledge_facts"]  # written: Q&A rows first
    copy = tmp_path / "copy"
    shutil.copytree(pipeline_dir(name), copy)
    (copy / "knowledge_facts.yaml").unlink()  # a step whose file is gone is turned off
    assert [s.key for s in load_pipeline_set(str(copy))["knowledge"].steps] == expected[:-2] + ["knowledge"]
    (copy / "leaves.yaml").write_text("knowledge:\n  steps: [{pipeline: knowledge}]\n  rows: [knowledge, nope]\n")
    with pytest.raises(DataError, match="leaves.yaml: knowledge: 'rows' must list"):
        load_pipeline_set(str(copy))


def test_language_rules_are_declared(tmp_path: Path) -> None:
    text = pipeline_dir("simple").joinpath("knowledge_facts.yaml").read_text()
    bad = tmp_path / "knowledge_facts.yaml"
    bad.write_text(text.replace("language: english\n", ""))
    with pytest.raises(DataError, match="applies english text rules"):
        load_pipeline(bad, "x")


def test_user_pipeline_with_own_prompt(tmp_path: Path) -> None:
    (tmp_path / "my.yaml").write_text('generation: "Say {task_description}"\nstart_tags: [""]\nend_tags: [""]\n')
    (tmp_path / "freeform_skill.yaml").write_text(
        "blocks:\n  - {type: llm, name: g, config: {prompt: my.yaml, output_cols: [response]}}\n")
    pipes = load_pipeline_set(str(tmp_path))
    assert list(pipes) == ["freeform_skill"] and pipes["freeform_skill"].pipelines[0].blocks[0].prompt.name == "my"


# ---------------------------------------------------------------------------------------------------- chunking

def test_options_fit_the_teachers_context_window() -> None:
    defaults = GenerateOptions()
    assert fit_to_context(defaults, None) == defaults  # an endpoint that does not say: as given
    assert fit_to_context(defaults, 4096) == defaults  # the embedded SmolLM2 (4,096 tokens): unchanged
    small = fit_to_context(defaults, 1024)  # room for a 256-token answer, chunks half of the 768-token prompt
    assert (small.max_prompt_tokens, small.chunk_size, small.chunk_overlap) == (768, 384, 50)
    tiny = fit_to_context(GenerateOptions(max_num_tokens=64), 256)
    assert (tiny.max_prompt_tokens, tiny.chunk_size, tiny.chunk_overlap) == (192, 96, 24)


def test_chunking_keeps_tables_and_headings() -> None:
    table = "| year | event |\n|---|---|\n" + "".join(f"| {1800 + i} | event number {i} |\n" for i in range(12))
    doc = ("# Town\n\n" + "Intro sentence about the town. " * 40 + "\n\n## Timeline\n\n" + table
           + "\n## Culture\n\nThe festival is in October.\n")
    chunks = chunk_markdown(doc, chunk_size=120, overlap=10)
    assert len(chunks) >= 3
    holding = [c for c in chunks if "| 1800 |" in c]
    assert len(holding) == 1 and "| 1811 |" in holding[0] and holding[0].startswith("## Timeline")
    assert any(c.startswith("# Town") and "Intro sentence" in c for c in chunks[1:])  # heading carried over
    assert chunks[-1].endswith("October.")


# ----------------------------------------------------------------------------------------------------- quality

def test_quality_guards_count_each_reason() -> None:
    rows = [
        {"question": "What is the capital of France?", "response": "Paris."},
        {"question": "What is the capital of France ?", "response": "Paris"},  # exact after normalising
        {"question": "What's the capital of France?", "response": "Paris"},  # near duplicate
        {"question": "Give three synonyms for the word happy", "response": "glad"},  # a seed
        {"question": "Why is the sky blue?", "response": ""},
        {"question": "Why is grass green?", "response": "Why is grass green?"},
        {"question": "Tell a long story", "response": "word " * 500},
        {"question": "<question>", "response": "x"},
        {"question": "How tall is the tower?", "response": "About 300 metres."},
    ]
    decon = Decontaminator(['Give three synonyms for the word "happy".'], n=5, threshold=0.5)
    kept, dropped = guard_rows(rows, decon, max_answer_tokens=100)
    assert [r["response"] for r in kept] == ["Paris.", "About 300 metres."]
    assert dropped == {"duplicate": 1, "near_duplicate": 1, "contaminated": 1, "empty_answer": 1,
                       "echo_answer": 1, "too_long_answer": 1, "empty_question": 1}
    assert jaccard(shingles("abc def"), shingles("abc def")) == 1.0
    assert answer_problem("q", "fine answer", 10) is None


def test_teacher_cache_survives_reopen(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "c.sqlite")
    key = call_key("m", [{"role": "user", "content": "hi"}], SamplingParams(), 0)
    assert key != call_key("m", [{"role": "user", "content": "hi"}], SamplingParams(), 1)
    cache.put(key, {"text": "hello"})
    cache.close()
    assert CallCache(tmp_path / "c.sqlite").get(key) == {"text": "hello"}


def test_llm_block_drops_item_cut_by_max_tokens(tmp_path: Path) -> None:
    class Truncating(ReplayClient):
        async def _next(self) -> Completion:
            self.calls += 1
            return Completion([" Q one?\nAnswer: A one.\n\nQuestion: Q two?\nAnswer: A tw"], 5, 64,
                              finish_reasons=["length"])

    ctx = ctx_for(Truncating([]), tmp_path)
    table = Table([{"task_description": "t", "_icl_seeds": []}])
    b = LLMBlock("gen", {"prompt": "freeform_qa", "output_cols": ["question", "response"]})
    out = run(b, table, ctx)
    assert [r["response"] for r in out] == ["A one."] and ctx.stats[-1].truncated == 1


def test_progress_display_and_summary_tables_render() -> None:
    import io

    from rich.console import Console

    from labrador.sdg.context import BlockStats
    from labrador.sdg.progress import ProgressDisplay, summary_tables

    stats = BlockStats("skills/a", "simple/freeform_skill", "gen", "llm", rows_in=5, rows_out=3, requests=5)
    for terminal in (True, False):
        buffer = io.StringIO()
        console = Console(file=buffer, force_terminal=terminal, width=160)
        with ProgressDisplay(console) as display:
            display.update(stats, 2, 5)
            display.update(stats, 5, 5, final=True)
        assert "gen" in buffer.getvalue() and "req 5" in buffer.getvalue()
    summary = {"leaves": [{"leaf": "skills/a", "kind": "freeform_skill", "rows": 0, "dropped": {"duplicate": 2},
                           "error": "filter 'f' removed all 3 rows"}], "blocks": [asdict(stats)]}
    buffer = io.StringIO()
    console = Console(file=buffer, width=200)
    for table in summary_tables(summary):
        console.print(table)
    assert "FAILED: filter 'f' removed all 3 rows" in buffer.getvalue() and "duplicate 2" in buffer.getvalue()
