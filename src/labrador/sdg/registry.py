"""The Block base class and the registry of block types that pipeline YAML names in `type:`.

A block module registers its classes with `@register_block("name")`. The built-in modules (`sdg.blocks`,
`sdg.fact_blocks`) are imported by `sdg.pipeline`; blocks of other distributions are found through the
entry-point group `labrador.sdg_blocks`, as plugins of simonw/llm are: each entry point names a Block subclass
(registered under the entry point's name unless it registered itself) or a module whose import registers its
blocks. Plugins are loaded the first time a pipeline names a type that is not registered, so a pipeline of
built-in blocks never imports third-party code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, TypeVar

from labrador.errors import DataError
from labrador.sdg.context import LeafContext
from labrador.sdg.table import Table

ENTRY_POINT_GROUP = "labrador.sdg_blocks"


class Block:
    """One step of a pipeline: takes a Table and returns a new one (`apply`, or `run` for async work)."""

    kind: ClassVar[str] = ""  # the registered type name, set by register_block
    required: ClassVar[tuple[str, ...]] = ()  # config keys the block cannot do without
    language: ClassVar[str | None] = None  # text rules the block applies; its pipeline must declare the same
    drops_rows: ClassVar[bool] = False  # rows it removes are counted as `filtered` in the block's stats

    def __init__(self, name: str, config: dict[str, Any], base_dir: Path | None = None) -> None:
        self.name = name
        self.config = config
        self.base_dir = base_dir
        missing = [k for k in self.required if k not in config]
        if missing:
            raise DataError(f"block '{name}' ({self.kind}): missing config key(s) {missing}.")

    async def run(self, table: Table, ctx: LeafContext) -> Table:
        stats = ctx.new_stats(self.name, self.kind, len(table))
        started = time.perf_counter()
        out = self.apply(table, ctx)
        stats.rows_out = len(out)
        stats.filtered = max(0, len(table) - len(out)) if self.drops_rows else 0
        stats.seconds = time.perf_counter() - started
        ctx.progress(stats, 1, 1, final=True)
        return out

    def apply(self, table: Table, ctx: LeafContext) -> Table:
        raise NotImplementedError

    def columns(self, key: str) -> list[str]:
        value = self.config.get(key, [])
        return [value] if isinstance(value, str) else list(value)


B = TypeVar("B", bound=type[Block])
_TYPES: dict[str, type[Block]] = {}
_loaded: set[str] = set()  # entry points already imported ("name = value")


def register_block(kind: str) -> Callable[[B], B]:
    """Class decorator: make the class the block of pipeline type `kind`."""

    def add(cls: B) -> B:
        other = _TYPES.get(kind)
        if other is not None and other is not cls:
            raise DataError(f"block type {kind!r} is registered twice: by {other.__module__}.{other.__qualname__} "
                            f"and by {cls.__module__}.{cls.__qualname__}.")
        cls.kind = kind
        _TYPES[kind] = cls
        return cls

    return add


def block_class(kind: str) -> type[Block]:
    """The class of block type `kind`, loading the installed plugins when it is not registered yet."""
    if kind not in _TYPES:
        load_plugins(kind)
    if kind not in _TYPES:
        raise DataError(f"unknown type {kind!r}; known: {sorted(_TYPES)}. A block from another package must be "
                        f"installed in this Python environment with an entry point in group {ENTRY_POINT_GROUP!r}.")
    return _TYPES[kind]


def load_plugins(kind: str) -> None:
    """Import the entry points of the group not imported yet (a package installed since the last call too),
    the one named `kind` first and none after `kind` is registered: a broken plugin stops only the pipelines
    whose block it could have been, each time they are loaded."""
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name != kind):
        key = f"{point.name} = {point.value}"
        if kind in _TYPES:
            return
        if key not in _loaded:
            _register_plugin(point)
            _loaded.add(key)


def _register_plugin(point: EntryPoint) -> None:
    where = f"block plugin {point.name!r} ({point.value}"
    where += f", from the {point.dist.name} distribution)" if point.dist else ")"
    try:
        target = point.load()
    except Exception as err:  # noqa: BLE001 - any failure of third-party code becomes one clear message
        raise DataError(f"{where} failed to import: {type(err).__name__}: {err}") from None
    if isinstance(target, type) and issubclass(target, Block):
        if target not in _TYPES.values():
            register_block(point.name)(target)
    elif not isinstance(target, ModuleType):
        raise DataError(f"{where} names neither a Block subclass nor a module of blocks.")
