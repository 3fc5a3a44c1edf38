"""`labrador.cli.model_options`: one click option per field of an options model, made on first use."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import click
import pytest
from click.testing import CliRunner
from pydantic import BaseModel, Field

from labrador.cli.model_options import ModelCommand, options_from


class Opts(BaseModel):
    num_epochs: int = Field(3, ge=1, description="Passes over the data.")
    ratio: float = Field(0.5, ge=0, lt=1)
    name: str = "x"
    prompts: Path | None = None
    mode: Literal["fast", "slow"] = "fast"
    bits: Literal[4, 8] | None = None
    kl: bool = True
    use_cache: bool = True
    resume: bool = False
    modules: list[str] = Field(default_factory=list)
    seed: int | None = None
    hidden: float = 0.0
    scale: int = 30


def _command(seen: dict[str, Any]) -> click.Command:
    @click.command(cls=ModelCommand)
    @click.option("--preset")
    @options_from(Opts, exclude={"hidden"},
                  rename={"use_cache": ["--no-cache"], "resume": ["--resume"], "scale": ["--scale", "-n"]})
    @click.option("-q", "--quiet", is_flag=True)
    def run(**given: Any) -> None:
        seen.update(given)

    return run


def _invoke(*args: str) -> tuple[click.testing.Result, dict[str, Any]]:
    seen: dict[str, Any] = {}
    return CliRunner().invoke(_command(seen), list(args)), seen


def test_every_option_defaults_to_not_given() -> None:
    result, seen = _invoke()
    assert result.exit_code == 0, result.output
    assert seen == {"preset": None, "quiet": False, **{name: None for name in Opts.model_fields if name != "hidden"}}


def test_values_are_parsed_by_the_field_types(tmp_path: Path) -> None:
    prompts = tmp_path / "p.yaml"
    prompts.write_text("prompts: []\n")
    result, seen = _invoke("--num-epochs", "2", "--ratio", "0.25", "--name", "y", "--prompts", str(prompts),
                           "--mode", "slow", "--bits", "8", "--no-kl", "--no-cache", "--resume",
                           "--modules", " q_proj, v_proj ,,", "--seed", "7", "-n", "5")
    assert result.exit_code == 0, result.output
    assert seen["num_epochs"] == 2 and seen["ratio"] == 0.25 and seen["name"] == "y"
    assert seen["prompts"] == str(prompts) and seen["mode"] == "slow" and seen["bits"] == 8
    assert (seen["kl"], seen["use_cache"], seen["resume"]) == (False, False, True)
    assert seen["modules"] == ["q_proj", "v_proj"] and seen["seed"] == 7 and seen["scale"] == 5
    assert Opts.model_validate({k: v for k, v in seen.items() if k in Opts.model_fields}).bits == 8


@pytest.mark.parametrize("args, needle", [
    (("--num-epochs", "0"), "0 is not in the range x>=1"),
    (("--ratio", "1"), "1.0 is not in the range 0<=x<1"),
    (("--mode", "medium"), "'medium' is not one of 'fast', 'slow'"),
    (("--bits", "5"), "'5' is not one of '4', '8'"),
    (("--prompts", "/no/such/file.yaml"), "does not exist"),
    (("--hidden", "1"), "No such option '--hidden'"),  # excluded
])
def test_a_bad_value_is_a_usage_error(args: tuple[str, ...], needle: str) -> None:
    result, _ = _invoke(*args)
    assert result.exit_code == 2 and needle in result.output, result.output


def test_help_comes_from_the_descriptions_in_the_decorators_place() -> None:
    result, _ = _invoke("--help")
    assert result.exit_code == 0
    flags = [line.split()[0].rstrip(",") for line in result.output.splitlines() if line.startswith("  -")]
    assert flags == ["--preset", "--num-epochs", "--ratio", "--name", "--prompts", "--mode", "--bits", "--kl",
                     "--no-cache", "--resume", "--modules", "--seed", "-n", "-q", "--help"]
    assert "--num-epochs INTEGER RANGE  Passes over the data.  [x>=1]" in result.output
    assert "--kl / --no-kl" in result.output and "--prompts FILE" in result.output


def test_the_model_is_imported_only_when_the_options_are_needed() -> None:
    @click.command(cls=ModelCommand)
    @options_from("no_such_module_here:Opts")
    def run() -> None:
        pass

    assert run.name == "run"  # built, and listed by its group, without the model
    with pytest.raises(ModuleNotFoundError):
        run.params  # noqa: B018 - reading them makes the options


def test_a_misspelt_field_or_an_unsupported_type_is_a_programming_error() -> None:
    class Odd(BaseModel):
        pair: tuple[int, int] = (1, 2)

    for model, exclude in ((Opts, {"hiden"}), (Odd, set())):
        @click.command(cls=ModelCommand)
        @options_from(model, exclude=exclude)
        def run() -> None:
            pass

        with pytest.raises(TypeError, match="hiden|pair"):
            run.params  # noqa: B018


@pytest.mark.parametrize("group, command, flags", [
    ("model", "train", "--preset --data-path --model-path --ckpt-output-dir --pipeline --strategy --num-epochs "
     "--learning-rate --effective-batch-size --max-seq-len --max-batch-len --warmup-steps --lr-scheduler "
     "--max-grad-norm --lora-rank --lora-alpha --lora-dropout --lora-target-modules --lora-quantize "
     "--save-samples --held-out-fraction --resume --seed --max-steps --dtype --distributed-strategy "
     "--nproc-per-node --nnodes --node-rank --rdzv-endpoint --phase1-num-epochs --phase1-learning-rate "
     "--phase1-effective-batch-size --phase2-num-epochs --phase2-learning-rate --phase2-effective-batch-size "
     "--no-cache --anchor-kl --no-anchor-kl --anchor-weight"),
    ("data", "generate", "--preset --taxonomy-path --taxonomy-base --output-dir --pipeline --teacher --model "
     "--endpoint-url --api-key --sdg-scale-factor --num-instructions --max-num-tokens --chunk-size "
     "--chunk-overlap --num-workers --seed --num-examples --timeout --threads --no-cache -q --quiet"),
    ("data", "prepare", "--output-dir --preset --taxonomy-path --taxonomy-base --heldout --general-check "
     "--student --seed --raft-distractors --raft-gold-ratio --grounded-only --no-grounded-only --closed-book "
     "--no-closed-book --train-on-seeds --no-train-on-seeds --self-replay --no-self-replay --replay-prompts "
     "--replay-max-tokens --replay-kl --no-replay-kl --threads"),
])
def test_the_commands_keep_their_flags(group: str, command: str, flags: str) -> None:
    from labrador.cli.main import load_group

    cmd = load_group(group).commands[command]  # type: ignore[union-attr]
    have = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts) if isinstance(p, click.Option)}
    assert have == set(flags.split())
