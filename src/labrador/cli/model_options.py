"""Click options made from a pydantic options model's fields (name, type, range, help: the model is their one
place), each defaulting to None ('not given', see `labrador.config.layered`). They are made when the command
parses or shows its help, not when its group lists it: `ilab data --help` imports no pydantic."""

from __future__ import annotations

import pkgutil
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import click


class ModelCommand(click.Command):
    """A command whose `options_from` placeholders turn into options when its parameters are first read."""

    @property  # type: ignore[override]
    def params(self) -> list[click.Parameter]:
        self._params[:] = [o for p in self._params for o in ([p] if isinstance(p, click.Parameter) else p())]
        return self._params

    @params.setter
    def params(self, value: list[click.Parameter]) -> None:
        self._params = value


def options_from(model: type | str, exclude: Collection[str] = (),
                 rename: Mapping[str, Sequence[str]] | None = None) -> Callable[[Any], Any]:
    """One option per field of `model` (a class, or "module:Class" imported on use) but `exclude`, where this
    decorator stands (the command needs `cls=ModelCommand`): `--field-name` (a bool: `--x/--no-x`) unless `rename`
    gives the declarations; a bool renamed to flags without '/' sets the opposite of its default (`--no-cache`)."""
    def options() -> list[click.Option]:
        fields = (pkgutil.resolve_name(model) if isinstance(model, str) else model).model_fields
        if unknown := (set(exclude) | set(rename or {})) - set(fields):
            raise TypeError(f"options_from({model!r}): no field(s) {', '.join(sorted(unknown))}")
        return [field_option(n, f, (rename or {}).get(n)) for n, f in fields.items() if n not in exclude]

    def decorate(f: Any) -> Any:
        f.__click_params__ = [*getattr(f, "__click_params__", []), options]
        return f

    return decorate


def field_option(name: str, field: Any, decls: Sequence[str] | None = None) -> click.Option:
    """The option of the pydantic field `name` (a FieldInfo)."""
    kind, dashed = field.annotation, name.replace("_", "-")
    if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None: X
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    decls = list(decls or [f"--{dashed}/--no-{dashed}" if kind is bool else f"--{dashed}"])
    # Field(ge=1) and the like are annotated_types.Ge(ge=1) ... in the field's metadata
    bounds = {k: getattr(c, k) for c in field.metadata for k in ("ge", "gt", "le", "lt") if hasattr(c, k)}
    settings: dict[str, Any] = {"default": None, "help": field.description, "type": kind}
    if kind is bool and not any("/" in d for d in decls):
        settings.update(type=None, flag_value=not field.default)
    elif typing.get_origin(kind) is list:
        settings.update(type=str, callback=lambda _ctx, _param, value: None if value is None else
                        [item.strip() for item in value.split(",") if item.strip()])
    elif typing.get_origin(kind) is typing.Literal:
        settings["type"] = click.Choice(typing.get_args(kind))
    elif kind is Path:  # every Path field of the models names an input file
        settings["type"] = click.Path(dir_okay=False, exists=True)
    elif kind in (int, float) and bounds:
        settings["type"] = (click.IntRange if kind is int else click.FloatRange)(
            bounds.get("ge", bounds.get("gt")), bounds.get("le", bounds.get("lt")), "gt" in bounds, "lt" in bounds)
    elif kind not in (str, int, float, bool):
        raise TypeError(f"options_from: no click type for field {name!r} ({kind!r})")
    return click.Option([*decls, name], **settings)
