"""`ilab config init|show|edit`."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def config() -> None:
    """Create, show and edit config.yaml."""


@config.command()
@click.option("--non-interactive", is_flag=True, help="Use defaults and the given options; ask nothing.")
@click.option("--taxonomy-path", type=click.Path(file_okay=False), help="Where the taxonomy repository lives.")
@click.option("--taxonomy-repo", default=None, help="Repository to clone when the taxonomy path is empty.")
@click.option("--model-path", help="Default model (name or path) for chat, serve, generate and train.")
def init(non_interactive: bool, taxonomy_path: str | None, taxonomy_repo: str | None, model_path: str | None) -> None:
    """Write config.yaml, create the data directories and a taxonomy (cloned, or the bundled sample offline).

    Running it again keeps the existing settings and applies the options given.
    """
    from labrador import paths, workspace
    from labrador.config import DEFAULT_TAXONOMY_REPO, load_config, save_config

    cfg_file = paths.config_file()
    cfg = load_config(cfg_file)
    taxonomy_path = taxonomy_path or cfg.generate.taxonomy_path
    model_path = model_path or cfg.chat.model
    repo = DEFAULT_TAXONOMY_REPO if taxonomy_repo is None else taxonomy_repo
    if not non_interactive:
        taxonomy_path = click.prompt("Path to the taxonomy repository", default=taxonomy_path)
        model_path = click.prompt("Default model (name or path)", default=model_path)
    taxonomy_path = str(Path(taxonomy_path).expanduser().resolve())

    for section in (cfg.chat, cfg.generate, cfg.serve, cfg.train):
        attr = "teacher" if section is cfg.generate else "model"
        setattr(section, attr, model_path)
    cfg.generate.taxonomy_path = taxonomy_path
    workspace.make_data_dirs()
    setup = workspace.ensure_taxonomy(Path(taxonomy_path), repo)
    written = save_config(cfg, cfg_file)
    click.echo(setup.message)
    click.echo(f"Wrote {written}. Data lives under {paths.data_dir()}.")


@config.command()
@click.option("--path", "show_path", is_flag=True, help="Print only the config file's path.")
def show(show_path: bool) -> None:
    """Print the settings in effect (the file's values over the defaults)."""
    from labrador import paths
    from labrador.config import dump_config, load_config

    cfg_file = paths.config_file()
    if show_path:
        click.echo(str(cfg_file))
        return
    cfg = load_config(cfg_file)
    origin = str(cfg_file) if cfg_file.exists() else f"defaults ({cfg_file} does not exist yet)"
    click.echo(f"# {origin}")
    click.echo("# null: not set here; the command's option, a --preset, or the built-in default applies")
    click.echo(dump_config(cfg), nl=False)


@config.command()
def edit() -> None:
    """Open config.yaml in $EDITOR; the result is validated before it is saved."""
    from labrador import paths
    from labrador.config import config_text, parse_config_text, save_config
    from labrador.errors import ConfigError

    cfg_file = paths.config_file()
    text = config_text(cfg_file)
    edited = click.edit(text, extension=".yaml", require_save=False)
    if edited is None or edited == text:
        click.echo("No changes.")
        return
    try:
        cfg = parse_config_text(edited, "The edited config")
    except ConfigError as err:
        raise ConfigError(f"{err} Nothing was saved.") from None
    save_config(cfg, cfg_file)
    click.echo(f"Saved {cfg_file}.")
