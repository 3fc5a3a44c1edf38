"""Model resolution, GGUF header reading and model info, on real GGUF / safetensors files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from labrador.errors import ModelError
from labrador.models.embedded import EMBEDDED_MODEL_NAME
from labrador.models.gguf_meta import read_gguf
from labrador.models.info import model_info
from labrador.models.resolve import resolve_model


def write_small_gguf(path: Path) -> Path:
    """A small but complete GGUF written by the gguf package (arrays long enough to be skipped)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(128)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_name("tiny")
    writer.add_array("tokenizer.ggml.tokens", [f"tok{i}" for i in range(100)])
    writer.add_array("tokenizer.ggml.scores", [float(i) for i in range(100)])
    writer.add_array("general.tags", ["a", "b"])
    writer.add_tensor("token_embd.weight", np.ones((16, 8), dtype=np.float16))
    writer.add_tensor("output_norm.weight", np.arange(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def small_gguf(tmp_path: Path) -> Path:
    return write_small_gguf(tmp_path / "tiny.gguf")


def test_reader_agrees_with_gguf_package(small_gguf: Path) -> None:
    import gguf

    ours, ref = read_gguf(small_gguf), gguf.GGUFReader(small_gguf)
    assert ours.data_offset == ref.data_offset
    assert [(t.name, t.type_name, t.n_elements, t.n_bytes, ours.data_offset + t.offset) for t in ours.tensors.values()] == \
        [(t.name, t.tensor_type.name, int(t.n_elements), int(t.n_bytes), int(t.data_offset)) for t in ref.tensors]
    for key in ("general.architecture", "llama.context_length", "general.file_type", "general.name", "general.tags"):
        assert ours.metadata[key] == ref.fields[key].contents()
    assert ours.array_lengths == {"tokenizer.ggml.tokens": 100, "tokenizer.ggml.scores": 100}
    assert (ours.architecture, ours.context_length, ours.parameter_count) == ("llama", 128, 136)


def test_every_truncation_is_a_model_error(small_gguf: Path, tmp_path: Path) -> None:
    data = small_gguf.read_bytes()
    cut_file = tmp_path / "cut.gguf"
    for cut in range(4, len(data) - 1, 7):
        cut_file.write_bytes(data[:cut])
        with pytest.raises(ModelError, match="truncated"):
            read_gguf(cut_file)


def test_random_corruption_never_crashes(small_gguf: Path, tmp_path: Path) -> None:
    data = bytearray(small_gguf.read_bytes())
    rng = random.Random(0)
    bad = tmp_path / "bad.gguf"
    for _ in range(300):
        mutated = bytearray(data)
        for _ in range(3):
            mutated[rng.randrange(4, 200)] = rng.randrange(256)
        bad.write_bytes(bytes(mutated))
        try:
            read_gguf(bad)
        except ModelError as err:
            assert str(bad) in str(err) and "\n" not in str(err)


def test_resolve_embedded_paths_and_names(small_gguf: Path, tmp_path: Path, smollm_gguf: Path) -> None:
    for name in (None, "", EMBEDDED_MODEL_NAME, "SmolLM2-135M-Instruct"):
        assert resolve_model(name, None).path == smollm_gguf
    resolved = resolve_model(str(small_gguf), None)
    assert (resolved.format, resolved.name, resolved.path) == ("gguf", "tiny", small_gguf.resolve())
    models = tmp_path / "models"
    (models / "org" / "repo").mkdir(parents=True)
    (models / "org" / "repo" / "config.json").write_text("{}")
    (models / "tiny.gguf").write_bytes(small_gguf.read_bytes())
    assert resolve_model("tiny", models).path == (models / "tiny.gguf").resolve()
    assert resolve_model("tiny.gguf", models).name == "tiny.gguf"
    hf = resolve_model("org/repo", models)
    assert (hf.format, hf.path) == ("hf", (models / "org" / "repo").resolve())
    single = tmp_path / "single"
    single.mkdir()
    (single / "m.gguf").write_bytes(small_gguf.read_bytes())
    assert resolve_model(str(single), None).path == (single / "m.gguf").resolve()


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: d / "missing.gguf", "does not exist"),
    (lambda d: d / "./missing-dir/", "does not exist"),
    (lambda d: (d / "notes.txt").write_text("hello") and d / "notes.txt", "not a GGUF model file"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "no config.json"),
    (lambda d: (d / "short.gguf").write_bytes(b"GGUF\x03\x00") and d / "short.gguf", "truncated"),
])
def test_bad_paths_give_one_line(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(ModelError, match=message) as info:
        resolve_model(str(make(tmp_path)), None)
    assert "\n" not in str(info.value)


def test_unknown_name_lists_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"not in the models directory .*ilab model list"):
        resolve_model("granite-7b", tmp_path)


def test_tensor_data_truncation_reports_sizes(small_gguf: Path, tmp_path: Path) -> None:
    data = small_gguf.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[:-10])
    with pytest.raises(ModelError, match=rf"need {len(data)} bytes but the file has {len(data) - 10}"):
        model_info(cut)


def test_info_for_gguf_and_hf(small_gguf: Path, smollm_gguf: Path, tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    info = model_info(smollm_gguf, EMBEDDED_MODEL_NAME)
    assert (info.format, info.architecture, info.parameters, info.quantization, info.context_length) == \
        ("gguf", "llama", 134_515_008, "Q4_1", 8192)
    assert model_info(small_gguf).quantization == "F16"
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"],
                                                "max_position_embeddings": 2048, "torch_dtype": "bfloat16"}))
    save_file({"a": np.zeros((3, 4), np.float32), "b": np.zeros(5, np.float32)}, str(hf / "model-1.safetensors"),
              metadata={"format": "pt"})
    save_file({"c": np.zeros((2, 2), np.float16)}, str(hf / "model-2.safetensors"))
    info = model_info(hf)
    assert (info.format, info.architecture, info.parameters, info.quantization, info.context_length) == \
        ("hf", "LlamaForCausalLM", 21, "F32", 2048)
    (hf / "model-2.safetensors").write_bytes(b"\xff" * 8 + b"{}")
    with pytest.raises(ModelError, match="truncated or corrupt safetensors"):
        model_info(hf)
