"""A small columnar table: the unit of data that flows between pipeline blocks.

Rows are plain dicts (str -> JSON-like value). We do not depend on `datasets`: SDG tables hold hundreds to a few
thousand rows, and a list of dicts keeps blocks simple, copies cheap and errors readable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from labrador.errors import DataError

Row = dict[str, Any]


class Table:
    """An ordered list of rows with a known set of columns (the union of the rows' keys)."""

    def __init__(self, rows: Iterable[Row] = ()) -> None:
        self.rows: list[Row] = [dict(r) for r in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __getitem__(self, index: int) -> Row:
        return self.rows[index]

    def __repr__(self) -> str:
        return f"Table({len(self.rows)} rows, columns={self.columns})"

    @property
    def columns(self) -> list[str]:
        seen: dict[str, None] = {}
        for row in self.rows:
            for key in row:
                seen.setdefault(key, None)
        return list(seen)

    def column(self, name: str) -> list[Any]:
        self.require(name)
        return [row.get(name) for row in self.rows]

    def require(self, *names: str, block: str = "") -> None:
        """Raise a clear DataError when a column a block needs is absent (an empty table has every column)."""
        if not self.rows:
            return
        have = set(self.columns)
        missing = [n for n in names if n not in have]
        if missing:
            where = f"block '{block}': " if block else ""
            raise DataError(
                f"{where}column(s) {missing} do not exist; the table has {sorted(have)}. Check the column names "
                "in the pipeline YAML (an earlier block must create them, or rename them with rename_columns)."
            )

    def map(self, fn: Callable[[Row], Row]) -> Table:
        return Table(fn(dict(r)) for r in self.rows)

    def filter(self, predicate: Callable[[Row], bool]) -> Table:
        return Table(r for r in self.rows if predicate(r))

    def concat(self, other: Table) -> Table:
        return Table([*self.rows, *other.rows])
