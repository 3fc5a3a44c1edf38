"""Blocks from other distributions: a tiny package with an entry point in group `labrador.sdg_blocks`,
installed into this venv by the test, supplies a block that a pipeline YAML names."""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from labrador.errors import DataError
from labrador.sdg.context import GenerateOptions, LeafContext
from labrador.sdg.pipeline import load_pipeline, load_pipeline_set
from labrador.sdg.table import Table

DIST = "labrador-test-upper-block"

PYPROJECT = f"""[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{DIST}"
version = "0.1"

[project.entry-points."labrador.sdg_blocks"]
test_upper = "labrador_test_upper:UpperBlock"
test_broken = "labrador_test_broken"

[tool.setuptools]
py-modules = ["labrador_test_upper", "labrador_test_broken"]
"""

UPPER = '''from labrador.sdg.registry import Block
from labrador.sdg.table import Table


class UpperBlock(Block):
    """Uppercase the `column` of every row."""

    required = ("column",)

    def apply(self, table, ctx):
        column = self.config["column"]
        return Table({**row, column: str(row[column]).upper()} for row in table)
'''


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True)


@pytest.fixture
def installed_plugin(tmp_path: Path):
    package = tmp_path / "plugin"
    package.mkdir()
    (package / "pyproject.toml").write_text(PYPROJECT)
    (package / "labrador_test_upper.py").write_text(UPPER)
    (package / "labrador_test_broken.py").write_text("raise RuntimeError('this plugin is broken')\n")
    try:
        _pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(package))
        importlib.invalidate_caches()  # the new module and distribution appeared while this process runs
        yield
    finally:
        _pip("uninstall", "-y", DIST)


def test_block_from_an_installed_distribution_runs_in_a_pipeline(installed_plugin, tmp_path: Path) -> None:
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "freeform_skill.yaml").write_text(
        "blocks:\n"
        "  - {type: test_upper, name: shout, config: {column: question}}\n"
        "  - {type: duplicate_columns, name: copy, config: {columns: {question: response}}}\n")
    flow = load_pipeline_set(str(pipelines))["freeform_skill"]
    ctx = LeafContext("skills/test", "", None, GenerateOptions())  # type: ignore[arg-type] - no teacher needed
    rows, aux = asyncio.run(flow.run(Table([{"question": "why?"}, {"question": "Where is it?"}]), ctx))
    assert [(r["question"], r["response"]) for r in rows] == [("WHY?", "WHY?"), ("WHERE IS IT?", "WHERE IS IT?")]
    assert aux == [] and [s.kind for s in ctx.stats] == ["test_upper", "duplicate_columns"]
    # another type, not registered: the plugins are searched, and the broken one is reported with the file
    bad = pipelines / "knowledge.yaml"
    bad.write_text("blocks:\n  - {type: test_missing}\n")
    with pytest.raises(DataError, match=r"knowledge.yaml: block #1: block plugin 'test_broken' .*"
                                        rf"{DIST} distribution\) failed to import: RuntimeError"):
        load_pipeline(bad, "x")


def test_unknown_block_type_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "knowledge.yaml"
    bad.write_text("blocks:\n  - {type: llm, config: {prompt: knowledge_qa, output_cols: [question, response]}}\n"
                   "  - {type: teleport}\n")
    with pytest.raises(DataError) as err:
        load_pipeline(bad, "x")
    message = str(err.value)
    assert message.startswith(f"{bad}: block #2: unknown type 'teleport'; known: [")
    assert "'llm'" in message and "'split_facts'" in message and "labrador.sdg_blocks" in message
