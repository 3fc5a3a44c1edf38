"""`ilab data generate`: run the pipelines over the changed taxonomy leaves and write one dataset run.

Leaves run concurrently (sharing one bounded pool of teacher requests), so the teacher never waits on a block
boundary of one leaf. Each leaf is isolated: missing documents, a failing or hanging endpoint, or unparsable
output end that leaf with a message in the summary; the others complete. The run is written to a hidden
temporary directory and renamed into place only when every file is complete.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from labrador.errors import DataError, LabradorError
from labrador.llm.base import LLMClient
from labrador.sdg.chunking import approx_tokens
from labrador.sdg.context import GenerateOptions, LeafContext, fit_to_context
from labrador.sdg.output import LeafResult, RunWriter
from labrador.sdg.pipeline import LeafFlow, load_pipeline_set
from labrador.sdg.progress import ProgressDisplay
from labrador.sdg.quality import Decontaminator, guard_rows
from labrador.sdg.seeds import chunk_documents, knowledge_table, skill_table, test_examples
from labrador.sdg.teacher import Teacher


@dataclass
class GenerateRequest:
    taxonomy_path: Path
    output_dir: Path
    taxonomy_base: str = "origin/main"
    pipeline: str = "simple"
    teacher: str | None = None
    endpoint_urls: list[str] = field(default_factory=list)
    api_key: str | None = None
    options: GenerateOptions = field(default_factory=GenerateOptions)
    use_cache: bool = True
    n_threads: int | None = None


@dataclass
class RunResult:
    run_id: str
    run_dir: Path | None
    summary: dict[str, Any]

    @property
    def failed_leaves(self) -> list[str]:
        return [leaf["leaf"] for leaf in self.summary["leaves"] if not leaf["rows"]]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", Path(text).stem if "/" in text else text).strip("-") or "teacher"


def _empty_reason(stats: list[Any], dropped: dict[str, int]) -> str:
    warnings = [s.warning for s in stats if s.warning]
    if warnings:
        return warnings[0]
    llm = [s for s in stats if s.kind == "llm"]
    if llm and llm[0].requests and llm[0].parse_failures == llm[0].requests:
        return (f"none of the {llm[0].requests} answers of block '{llm[0].block}' could be parsed (the teacher "
                "did not follow the output format; try a stronger teacher)")
    if dropped:
        return "every generated row was removed by the quality guards: " + ", ".join(
            f"{k} {v}" for k, v in sorted(dropped.items()))
    return "the pipeline produced no rows"


async def _run_leaf(leaf: Any, root: Path, pipelines: dict[str, LeafFlow], teacher: Teacher,
                    options: GenerateOptions, decontaminator: Decontaminator, display: ProgressDisplay,
                    count_tokens: Any) -> tuple[LeafResult, list[Any]]:
    result = LeafResult(leaf.rel_path, leaf.kind, tests=test_examples(leaf))
    ctx = LeafContext(leaf.rel_path, "", teacher, options, on_progress=display.update)
    started = time.perf_counter()
    try:
        if leaf.kind not in pipelines:
            raise DataError(f"the pipeline set has no pipeline for {leaf.kind} leaves ({leaf.kind}.yaml), so this "
                            "leaf cannot be generated")
        if leaf.kind == "knowledge":
            from labrador.taxonomy.documents import fetch_documents

            documents = await asyncio.to_thread(fetch_documents, leaf, root)
            chunks = chunk_documents(documents, options.chunk_size, options.chunk_overlap, count_tokens)
            if not chunks:
                raise DataError(f"{leaf.qna_path}: the leaf's documents hold no text to generate from")
            table = knowledge_table(leaf, chunks, options.scale_factor)
        else:
            table = skill_table(leaf, options.scale_factor)
        out, result.aux_rows = await pipelines[leaf.kind].run(table, ctx)
        max_answer = options.max_answer_tokens or options.max_num_tokens
        result.rows, result.dropped = guard_rows(out.rows, decontaminator, max_answer_tokens=max_answer,
                                                 threshold=options.dedup_threshold)
    except LabradorError as err:
        result.error = str(err)
    except Exception as err:  # noqa: BLE001 - one broken leaf must not stop the others; reported in the summary
        result.error = f"unexpected {type(err).__name__}: {err}"
    result.seconds = time.perf_counter() - started
    return result, ctx.stats


def _load_leaves(request: GenerateRequest) -> list[Any]:
    from labrador.taxonomy import load_leaves

    leaves = list(load_leaves(request.taxonomy_path, request.taxonomy_base))
    if not leaves:
        raise LabradorError(
            f"No new or changed taxonomy leaves in {request.taxonomy_path} compared with "
            f"'{request.taxonomy_base}'. Add or edit a qna.yaml, or pass --taxonomy-base empty to use every leaf.")
    return leaves


def make_client(request: GenerateRequest) -> LLMClient:
    from labrador.llm import get_client

    return get_client(request.teacher, endpoint_urls=request.endpoint_urls or None, api_key=request.api_key,
                      timeout=request.options.timeout, max_retries=1, max_concurrency=request.options.num_workers,
                      n_threads=request.n_threads)


def generate(request: GenerateRequest, client: LLMClient | None = None,
             display: ProgressDisplay | None = None) -> RunResult:
    """Run generation; `client` lets tests and benchmarks reuse a loaded teacher."""
    options = request.options
    pipelines = load_pipeline_set(request.pipeline)
    leaves = _load_leaves(request)
    own_client = client is None
    client = client or make_client(request)
    options = fit_to_context(options, getattr(client, "context_length", None))
    teacher = Teacher(client, workers=options.num_workers, timeout=options.timeout, use_cache=request.use_cache)
    display = display or ProgressDisplay(enabled=False)
    count_tokens = getattr(client, "count_tokens", None) or approx_tokens
    tests = [t["question"] for leaf in leaves for t in test_examples(leaf)]
    decontaminator = Decontaminator(tests, options.decontam_ngram, options.decontam_threshold)
    root = Path(request.taxonomy_path)
    busy_before = teacher.busy_seconds()
    started = time.perf_counter()

    async def run_all() -> list[tuple[LeafResult, list[Any]]]:
        return await asyncio.gather(*(_run_leaf(leaf, root, pipelines, teacher, options, decontaminator, display,
                                                count_tokens) for leaf in leaves))

    try:
        with display:
            outcomes = asyncio.run(run_all())
        wall = time.perf_counter() - started
        busy = teacher.busy_seconds() - busy_before
    finally:
        teacher.close()
        if own_client:
            client.close()
    results = [r for r, _ in outcomes]
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H_%M_%S")
    run_id = f"{stamp}_{_slug(teacher.model)}"
    summary = _summary(request, options, results, [s for _, stats in outcomes for s in stats], teacher, wall,
                       busy)
    summary.update(run_id=run_id, created=datetime.now(UTC).isoformat(timespec="seconds"))
    if not any(r.rows or r.aux_rows for r in results):
        return RunResult(run_id, None, summary)
    out_dir = Path(request.output_dir)
    final = out_dir / run_id
    suffix = 1
    while final.exists():
        final = out_dir / f"{run_id}-{suffix}"
        suffix += 1
    temp = out_dir / f".{final.name}.partial"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir(parents=True)
    run_info = {"pipeline": request.pipeline, "teacher": teacher.model}
    summary["files"] = RunWriter(temp, stamp, run_info).write(results)
    (temp / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    temp.rename(final)
    return RunResult(final.name, final, summary)


def _summary(request: GenerateRequest, options: GenerateOptions, results: list[LeafResult], stats: list[Any],
             teacher: Teacher, wall: float, busy: float) -> dict[str, Any]:
    leaves = []
    for res in results:
        leaf_stats = [s for s in stats if s.leaf == res.rel_path]
        reason = res.error or ("" if res.rows else _empty_reason(leaf_stats, res.dropped))
        leaves.append({"leaf": res.rel_path, "kind": res.kind, "rows": len(res.rows), "aux_rows": len(res.aux_rows),
                       "dropped": dict(res.dropped), "error": reason or None, "seconds": round(res.seconds, 2)})
    t = teacher.stats
    return {
        "pipeline": request.pipeline, "teacher": teacher.model, "taxonomy": str(request.taxonomy_path),
        "taxonomy_base": request.taxonomy_base, "options": dict(options.__dict__),
        "leaves": leaves, "blocks": [asdict(s) for s in stats],
        "teacher_stats": {"requests": t.requests, "cache_hits": t.cache_hits, "errors": t.errors,
                          "prompt_tokens": t.prompt_tokens, "completion_tokens": t.completion_tokens,
                          "busy_seconds": round(busy, 3), "wall_seconds": round(wall, 3),
                          "busy_ratio": round(busy / wall, 3) if wall > 0 else 0.0},
    }
