"""config.yaml: validation, init (offline fallback to the bundled sample), show, edit; system info."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from labrador.config import Config, config_text, dump_config, load_config, parse_config, parse_config_text
from labrador.errors import ConfigError, UserFileError


def test_defaults_when_file_is_missing(isolated_home: Path) -> None:
    cfg = load_config(isolated_home / "nope.yaml")
    assert cfg == Config()
    assert cfg.serve.host == "127.0.0.1"
    assert cfg.generate.taxonomy_path == str(isolated_home / "data" / "labrador" / "taxonomy")


def test_unknown_key_is_rejected_with_its_path() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"serve": {"prot": 8000}}, "config.yaml")
    assert "'serve.prot' is not a known setting" in str(err.value)


def test_wrong_type_names_key_and_expected_type() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"train": {"num_epochs": "many"}, "serve": {"port": 70000}}, "config.yaml")
    message = str(err.value)
    assert "'train.num_epochs' has the wrong value 'many': Input should be a valid integer" in message
    assert "'serve.port' has the wrong value 70000: Input should be less than or equal to 65535" in message


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("chat:\n  model: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config.yaml: not valid YAML \(line 3, column 1"):
        load_config(path)


def test_config_text_and_edited_text_are_checked_as_the_file_is(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    assert config_text(path) == dump_config(Config())
    path.write_text("serve:\n  port: 9000\n", encoding="utf-8")
    assert config_text(path) == "serve:\n  port: 9000\n"
    assert parse_config_text(config_text(path), "edited config").serve.port == 9000
    with pytest.raises(ConfigError, match=r"^edited config: line 3, column 1: the key 'serve' is written twice "
                                          r"\(first on line 1\)"):
        parse_config_text("serve:\n  port: 1\nserve: {}\n", "edited config")
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(UserFileError, match="is not a regular file but a FIFO"):
        config_text(path)


def test_init_offline_creates_config_dirs_and_sample_taxonomy(run_ilab, isolated_home: Path) -> None:
    result = run_ilab("config", "init", "--non-interactive", "--taxonomy-repo", "https://127.0.0.1:9/none.git")
    assert result.returncode == 0, result.stderr
    assert "Could not clone the taxonomy repository" in result.stdout
    data = isolated_home / "data" / "labrador"
    for sub in ("taxonomy", "datasets", "checkpoints", "models", "chatlogs", "logs"):
        assert (data / sub).is_dir()
    qnas = list((data / "taxonomy").rglob("qna.yaml"))
    assert len(qnas) >= 3
    log = subprocess.run(["git", "log", "--oneline"], cwd=data / "taxonomy", capture_output=True, text=True)
    assert "Sample taxonomy" in log.stdout
    cfg_file = isolated_home / "config" / "labrador" / "config.yaml"
    assert load_config(cfg_file).generate.taxonomy_path == str(data / "taxonomy")
    again = run_ilab("init", "--non-interactive", "--model-path", "/models/x.gguf")
    assert again.returncode == 0, again.stderr
    assert "Using the existing taxonomy" in again.stdout
    assert load_config(cfg_file).chat.model == "/models/x.gguf"


def test_init_interactive_prompts(run_ilab, isolated_home: Path, tmp_path: Path) -> None:
    tax = tmp_path / "my-taxonomy"
    result = run_ilab("config", "init", "--taxonomy-repo", "", input=f"{tax}\nmy-model\n")
    assert result.returncode == 0, result.stderr
    assert "Path to the taxonomy repository" in result.stdout
    assert (tax / ".git").is_dir()
    assert load_config(isolated_home / "config" / "labrador" / "config.yaml").train.model == "my-model"


def test_show_prints_effective_yaml_and_honours_config_option(run_ilab, tmp_path: Path) -> None:
    custom = tmp_path / "custom.yaml"
    custom.write_text("serve:\n  port: 9123\n", encoding="utf-8")
    result = run_ilab("--config", str(custom), "config", "show")
    assert result.returncode == 0, result.stderr
    assert f"# {custom}" in result.stdout
    assert "port: 9123" in result.stdout
    via_env = run_ilab("config", "show", "--path", env={"LABRADOR_CONFIG": str(custom)})
    assert via_env.stdout.strip() == str(custom)


def test_edit_validates_before_saving(run_ilab, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("serve:\n  port: 8000\n", encoding="utf-8")
    ok = run_ilab("--config", str(cfg), "config", "edit", env={"EDITOR": "sed -i s/8000/9001/"})
    assert ok.returncode == 0, ok.stderr
    assert load_config(cfg).serve.port == 9001
    bad = run_ilab("--config", str(cfg), "config", "edit", env={"EDITOR": "sed -i s/port/prot/"})
    assert bad.returncode == 1
    assert "'serve.prot' is not a known setting" in bad.stderr
    assert load_config(cfg).serve.port == 9001  # unchanged


def test_system_info_json(run_ilab, isolated_home: Path) -> None:
    result = run_ilab("system", "info", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["packages"]["torch"].startswith("2.")
    assert info["accelerators"]["llama_cpp_available"] is True
    assert info["paths"]["data_dir"] == str(isolated_home / "data" / "labrador")
    assert info["paths"]["embedded_model"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    text = run_ilab("sysinfo")
    assert "cpu_count:" in text.stdout
