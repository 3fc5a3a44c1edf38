"""The root CLI: version, help, aliases, lazy imports, error handling."""

from __future__ import annotations

import subprocess
import sys

import labrador

HEAVY = ("torch", "transformers", "llama_cpp", "datasets", "pydantic", "yaml", "jsonschema", "numpy")


def test_version(run_ilab) -> None:
    result = run_ilab("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"ilab, version {labrador.__version__}"


def test_help_lists_groups_and_aliases(run_ilab) -> None:
    result = run_ilab("--help")
    assert result.returncode == 0, result.stderr
    for name in ("config", "taxonomy", "data", "model", "system", "process", "pipeline"):
        assert f"  {name} " in result.stdout
    assert "ilab data generate" in result.stdout
    for alias in ("init", "diff", "generate", "train", "serve", "chat"):
        assert f"  {alias} " in result.stdout


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from labrador.cli.main import cli\n"
        "for args in (['--help'], ['model', '--help'], ['data', '--help']):\n"
        "    try:\n"
        "        cli.main(args, standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "HEAVY:"


def test_alias_resolves_to_group_command(run_ilab) -> None:
    direct = run_ilab("config", "init", "--help")
    alias = run_ilab("init", "--help")
    assert direct.returncode == alias.returncode == 0
    assert "--non-interactive" in alias.stdout
    assert alias.stdout.split("\n", 1)[1] == direct.stdout.split("\n", 1)[1]  # same options, other usage line


def test_unknown_command_is_a_usage_error(run_ilab) -> None:
    result = run_ilab("frobnicate")
    assert result.returncode == 2
    assert "No such command 'frobnicate'" in result.stderr
    assert "Traceback" not in result.stderr


def test_labrador_error_prints_one_line_without_traceback(run_ilab, isolated_home) -> None:
    cfg = isolated_home / "bad.yaml"
    cfg.write_text("chat:\n  greedy: maybe\n", encoding="utf-8")
    result = run_ilab("--config", str(cfg), "config", "show")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    debug = run_ilab("--debug", "--config", str(cfg), "config", "show")
    assert "Traceback" in debug.stderr
