"""`ilab`: the command line. Thin shell: parse, call the library, print.

A command group's module is imported (a plain import in `load_group`) only when that group runs, and each
command keeps its heavy imports (torch, transformers, llama_cpp, the library itself) inside its function, so
`ilab --help` loads click and this module alone: importing and building all ~30 commands cost it 50%.
"""

from __future__ import annotations

import os
import sys

import click

from labrador import __version__

GROUPS = {  # name -> one-line help, shown by `ilab --help` without importing the group
    "config": "Create, show and edit config.yaml.",
    "data": "Generate, list and prepare synthetic training data.",
    "model": "Download, list, convert, serve, chat, train, test, evaluate models.",
    "pipeline": "Run the whole method: diff, generate, train, evaluate.",
    "process": "List and stop background servers and jobs.",
    "system": "Information about this machine and installation.",
    "taxonomy": "Validate the taxonomy (diff).",
}

# InstructLab-style shortcuts: `ilab generate` = `ilab data generate`, and so on.
ALIASES: dict[str, tuple[str, str]] = {
    "init": ("config", "init"), "diff": ("taxonomy", "diff"), "generate": ("data", "generate"),
    **{name: ("model", name) for name in ("train", "serve", "chat", "evaluate", "test", "convert", "download", "list")},
    "sysinfo": ("system", "info"),
}


def load_group(name: str) -> click.Command | None:
    if name == "config":
        from labrador.cli.config import config as group
    elif name == "data":
        from labrador.cli.data import data as group
    elif name == "model":
        from labrador.cli.model import model as group
    elif name == "pipeline":
        from labrador.cli.pipeline import pipeline as group
    elif name == "process":
        from labrador.cli.process import process as group
    elif name == "system":
        from labrador.cli.system import system as group
    elif name == "taxonomy":
        from labrador.cli.taxonomy import taxonomy as group
    else:
        return None
    return group


class RootGroup(click.Group):
    """The top-level group: GROUPS, loaded when they run, and the ALIASES."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(GROUPS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load_group(cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        if args and args[0] in ALIASES:
            path = ALIASES[args[0]]
            group = self.get_command(ctx, path[0])
            assert isinstance(group, click.Group)
            sub = group.get_command(ctx, path[1])
            return args[0], sub, args[1:]
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl(list(GROUPS.items()))
        with formatter.section("Aliases"):
            formatter.write_dl([(a, "ilab " + " ".join(p)) for a, p in ALIASES.items()])


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="ilab")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="LABRADOR_CONFIG",
              help="Path of config.yaml (default: XDG config dir).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool) -> None:
    """labrador: teach a language model new knowledge and skills from a taxonomy of YAML files."""
    if config_path:
        os.environ["LABRADOR_CONFIG"] = config_path
    ctx.obj = {"debug": debug}


def main() -> None:
    debug = "--debug" in sys.argv[1:]
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as err:  # noqa: BLE001 - the one place that turns errors into messages
        from labrador.errors import LabradorError

        if debug:
            raise
        if isinstance(err, LabradorError):
            click.secho(f"Error: {err}", fg="red", err=True)
            sys.exit(err.exit_code)
        click.secho(f"Internal error: {type(err).__name__}: {err} (run with --debug for the traceback)",
                    fg="red", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
