"""The built-in general blocks: teacher calls (`llm`), filters, column operations, sampling and flattening.
Declared in pipeline YAML as `{type: <kind>, name: <name>, config: {...}}`; each registers its type with
`register_block` (see `labrador.sdg.registry`).
"""

from __future__ import annotations

import asyncio
import operator
import random
import time
from pathlib import Path
from typing import Any

from labrador.errors import DataError, EndpointError
from labrador.llm.base import SamplingParams
from labrador.sdg.context import LeafContext
from labrador.sdg.prompts import fill, load_prompt, parse_regex, parse_tagged
from labrador.sdg.registry import Block, register_block
from labrador.sdg.table import Row, Table


def estimate_tokens(text: str) -> int:
    """Rough token count (about 4 characters per token for English BPE vocabularies); used for budgets only."""
    return max(1, len(text) // 4)


@register_block("llm")
class LLMBlock(Block):
    """Prompt the teacher `n` times per row, parse each answer into fields, one output row per parsed item."""

    required = ("prompt", "output_cols")

    def __init__(self, name: str, config: dict[str, Any], base_dir: Path | None = None) -> None:
        super().__init__(name, config, base_dir)
        self.prompt = load_prompt(str(config["prompt"]), base_dir)
        self.output_cols = self.columns("output_cols")
        self.parser = config.get("parser", "tags")
        if self.parser == "tags" and len(self.prompt.start_tags) != len(self.output_cols):
            raise DataError(f"block '{name}': prompt {self.prompt.source} has {len(self.prompt.start_tags)} "
                            f"start_tags but the block has {len(self.output_cols)} output_cols; make them match.")
        if self.parser not in ("tags", "regex", "text"):
            raise DataError(f"block '{name}': parser must be tags, regex or text, not {self.parser!r}.")

    def samples_for(self, row: Row, ctx: LeafContext) -> int:
        n = self.config.get("n", 1)
        if n == "scale":  # `scale_multiplier` lets a cheap prompt (one short question) sample more per row
            scale = int(row.get("_num_samples", ctx.options.scale_factor))
            return max(1, round(scale * float(self.config.get("scale_multiplier", 1))))
        return max(1, int(n))

    def messages(self, row: Row, ctx: LeafContext, row_index: int, sample: int) -> list[dict[str, str]] | str:
        values = {k: v for k, v in row.items() if not k.startswith("_")}
        k = self.config.get("num_examples", ctx.options.num_examples)
        seeds = list(row.get("_icl_seeds") or [])
        # Deterministic per (leaf, block, row, sample): re-runs build identical prompts, so the cache hits.
        rng = random.Random(f"{ctx.options.seed}|{ctx.leaf}|{self.name}|{row_index}|{sample}")
        # The row's own seed comes first and is always shown; the rest are a sample of the leaf's other seeds.
        chosen = [seeds[0], *rng.sample(seeds[1:], max(0, min(int(k), len(seeds)) - 1))] if seeds and k else []
        where = f"block '{self.name}' (prompt {self.prompt.source})"
        budget = ctx.options.max_prompt_tokens
        while True:
            values["examples"] = "\n\n".join(fill(self.prompt.example_template, s, where) for s in chosen)
            system = fill(self.prompt.system, values, where)
            user = fill(self.prompt.template, values, where)
            if estimate_tokens(system + user) <= budget or not chosen:
                break
            chosen = chosen[:-1]  # long seeds: show fewer examples rather than overflow the context
        if estimate_tokens(system + user) > budget:
            limit = budget * 2  # characters per long value: about half the budget
            clipped = {k: (v[:limit] if isinstance(v, str) else v) for k, v in values.items()}
            user = fill(self.prompt.template, clipped, where)
        if self.prompt.mode == "completion":
            return f"{system.strip()}\n\n{user}" if system.strip() else user
        msgs = [{"role": "system", "content": system}] if system.strip() else []
        return [*msgs, {"role": "user", "content": user}]

    def parse(self, text: str, row: Row | None = None) -> list[dict[str, str]]:
        prefix = self.prompt.prefix
        if row is not None and "{" in prefix:  # a per-row lead, e.g. "{question_lead}" (sdg/fact_blocks.py)
            prefix = fill(prefix, {k: v for k, v in row.items() if not k.startswith("_")}, self.prompt.source)
        if self.prompt.mode == "completion" and prefix and not text.lstrip().lower().startswith(prefix.lower()):
            text = f"{prefix} {text.lstrip(' ')}"  # the prompt ended with the first tag; put it back
        if self.parser == "regex":
            return parse_regex(text, str(self.config.get("pattern", r"(.+)")), self.output_cols[0])
        if self.parser == "text":
            cleaned = text.strip()
            return [{self.output_cols[0]: cleaned}] if cleaned else []
        return parse_tagged(text, self.output_cols, self.prompt.start_tags, self.prompt.end_tags)

    async def run(self, table: Table, ctx: LeafContext) -> Table:
        stats = ctx.new_stats(self.name, self.kind, len(table))
        started = time.perf_counter()
        max_tokens = min(int(self.config.get("max_tokens", 512)), ctx.options.max_num_tokens)
        jobs = [(i, s) for i, row in enumerate(table.rows) for s in range(self.samples_for(row, ctx))]
        results: dict[tuple[int, int], list[dict[str, str]]] = {}
        done = 0
        ctx.progress(stats, 0, len(jobs))

        async def one(i: int, s: int) -> None:
            nonlocal done
            params = SamplingParams(temperature=float(self.config.get("temperature", 0.7)),
                                    top_p=float(self.config.get("top_p", 0.95)), max_tokens=max_tokens,
                                    stop=tuple(self.config.get("stop", self.prompt.stop)), seed=ctx.seed_for(i, s))
            messages = self.messages(table.rows[i], ctx, i, s)
            stats.requests += 1
            try:
                result = await ctx.teacher.call(messages, params, s, label=f"{self.name}:{self.prompt.name}")
            except EndpointError as err:
                stats.errors += 1
                ctx.failures += 1
                if ctx.successes == 0 and ctx.failures >= 3:
                    raise EndpointError(f"block '{self.name}': the teacher failed {ctx.failures} times and never "
                                        f"answered ({err}). Check the endpoint or use --timeout.") from None
                return
            finally:
                done += 1
            ctx.successes += 1
            stats.cached += int(result.cached)
            stats.prompt_tokens += result.prompt_tokens
            stats.completion_tokens += result.completion_tokens
            items = self.parse(result.text, table.rows[i])
            if result.finish_reason == "length" and items and self.parser == "tags" and \
                    result.text.rstrip().endswith(items[-1][self.output_cols[-1]][-20:]):
                items = items[:-1]  # the last item runs to where max_tokens cut it: its answer is incomplete
                stats.truncated += 1
            limit = self.config.get("max_items")
            items = items[: int(limit)] if limit else items
            if not items:
                stats.parse_failures += 1
            results[(i, s)] = items
            ctx.progress(stats, done, len(jobs))

        try:
            async with asyncio.TaskGroup() as group:  # the first fatal error cancels this leaf's other calls
                for i, s in jobs:
                    group.create_task(one(i, s))
        except BaseExceptionGroup as group_error:
            first = group_error.exceptions[0]
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            stats.seconds = time.perf_counter() - started
            raise first from None
        out: list[Row] = []
        for i, s in jobs:  # emit in job order: the output does not depend on completion order
            for item in results.get((i, s), []):
                row = {**table.rows[i], **item}
                meta = dict(row.get("_meta", {}))
                meta["lineage"] = [*meta.get("lineage", []), f"{self.name}:{self.prompt.digest()}:{s}"]
                meta.update(block=self.name, prompt_hash=self.prompt.digest(), sample_index=s)
                row["_meta"] = meta
                out.append(row)
        stats.rows_out = len(out)
        stats.seconds = time.perf_counter() - started
        ctx.progress(stats, len(jobs), len(jobs), final=True)
        return Table(out)


# A row matches when its value compares true to any of the targets; "in" (one of the targets) is equality.
_OPS = {"eq": operator.eq, "ne": operator.ne, "ge": operator.ge, "gt": operator.gt, "le": operator.le,
        "lt": operator.lt, "in": operator.eq, "contains": lambda a, b: str(b).lower() in str(a).lower()}


def _convert(value: Any, kind: str | None) -> Any:
    if kind is None:
        return value
    if kind == "float":
        return float(str(value).strip())
    if kind == "int":
        return int(float(str(value).strip()))
    if kind == "str":
        return str(value).strip().lower()
    raise DataError(f"filter: convert must be int, float or str, not {kind!r}.")


@register_block("filter")
class FilterByValueBlock(Block):
    """Keep rows whose `column` (converted with `convert`) compares true to `value` with `operation`.

    A value that cannot be converted (the judge wrote prose instead of a number) drops the row; it is counted.
    """

    required = ("column", "value")
    drops_rows = True

    def apply(self, table: Table, ctx: LeafContext) -> Table:
        column = self.config["column"]
        table.require(column, block=self.name)
        op_name = self.config.get("operation", "eq")
        if op_name not in _OPS:
            raise DataError(f"block '{self.name}': operation must be one of {sorted(_OPS)}, not {op_name!r}.")
        op, kind = _OPS[op_name], self.config.get("convert")
        values = self.config["value"]
        targets = [_convert(v, kind) for v in (values if isinstance(values, list) else [values])]
        keep: list[Row] = []
        for row in table:
            try:
                actual = _convert(row.get(column), kind)
            except (TypeError, ValueError):
                continue
            if any(op(actual, t) for t in targets):
                keep.append(row)
        return Table(keep)

    async def run(self, table: Table, ctx: LeafContext) -> Table:
        out = await super().run(table, ctx)
        stats = ctx.stats[-1]
        if len(table) and not len(out):
            stats.warning = (f"filter '{self.name}' removed all {len(table)} rows: the teacher's judgments never "
                             f"matched {self.config['value']!r}; a stronger teacher or the simple pipeline helps")
        return out


def _column_map(block: Block, table: Table) -> dict[str, str]:
    """The block's `columns: {source: destination}`, checked against the table."""
    mapping: dict[str, str] = block.config["columns"]
    table.require(*mapping, block=block.name)
    return mapping


@register_block("rename_columns")
class RenameColumnsBlock(Block):
    required = ("columns",)

    def apply(self, table: Table, ctx: LeafContext) -> Table:
        mapping = _column_map(self, table)
        return Table({mapping.get(k, k): v for k, v in row.items()} for row in table)


@register_block("duplicate_columns")
class DuplicateColumnsBlock(Block):
    required = ("columns",)

    def apply(self, table: Table, ctx: LeafContext) -> Table:
        mapping = _column_map(self, table)
        return Table({**row, **{dst: row[src] for src, dst in mapping.items()}} for row in table)


@register_block("combine_columns")
class CombineColumnsBlock(Block):
    """`output` = the `columns` joined by `separator`, or `template` filled with the row (`{column}`)."""

    required = ("output",)

    def apply(self, table: Table, ctx: LeafContext) -> Table:
        template = self.config.get("template")
        columns = self.columns("columns")
        table.require(*columns, block=self.name)
        sep = self.config.get("separator", "\n\n")
        out = []
        for row in table:
            if template:
                value = fill(template, row, f"block '{self.name}'")
            else:
                value = sep.join(str(row[c]) for c in columns if row.get(c))
            out.append({**row, self.config["output"]: value})
        return Table(out)


@register_block("drop_columns")
class DropColumnsBlock(Block):
    required = ("columns",)

    def apply(self, table: Table, ctx: LeafContext) -> Table:
        drop = set(self.columns("columns"))
        return Table({k: v for k, v in row.items() if k not in drop} for row in table)


@register_block("select_columns")
class SelectColumnsBlock(Block):
    required = ("columns",)

    def apply(self, table: Table, ctx: LeafContext) -> Table:
        keep = self.columns("columns")
        table.require(*keep, block=self.name)
        return Table({k: v for k, v in row.items() if k in keep or k.startswith("_")} for row in table)


@register_block("sample")
class SampleBlock(Block):
    """A reproducible random subset: `n` rows or a `fraction`; order is preserved."""

    drops_rows = True

    def apply(self, table: Table, ctx: LeafContext) -> Table:
        n = self.config.get("n")
        if n is None:
            n = round(len(table) * float(self.config.get("fraction", 1.0)))
        n = min(int(n), len(table))
        rng = random.Random(f"{ctx.options.seed}|{ctx.leaf}|{self.name}")
        picked = sorted(rng.sample(range(len(table)), n))
        return Table(table.rows[i] for i in picked)


@register_block("flatten")
class FlattenBlock(Block):
    """Melt `columns` into rows: one row per (column, value) with `var_name` = column name and `value_name` =
    its value; list values fan out into one row per element. Other columns are copied."""

    required = ("columns", "value_name")

    def apply(self, table: Table, ctx: LeafContext) -> Table:
        columns = self.columns("columns")
        table.require(*columns, block=self.name)
        var_name, value_name = self.config.get("var_name"), self.config["value_name"]
        out: list[Row] = []
        for row in table:
            base = {k: v for k, v in row.items() if k not in columns}
            for column in columns:
                values = row.get(column)
                for value in values if isinstance(values, list) else [values]:
                    if value in (None, ""):
                        continue
                    new = {**base, value_name: value}
                    if var_name:
                        new[var_name] = column
                    out.append(new)
        return Table(out)

