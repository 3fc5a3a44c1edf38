"""Data processing: chat-template rendering, loss masks, dropping long samples, the processed-data cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from labrador import paths
from labrador.errors import DataError
from labrador.train import data as data_mod
from test_train_support import fact_records, tiny_llama_dir, write_jsonl


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_llama_dir()))


def _trained_text(tokenizer, messages, unmask=False) -> str:
    ids, labels = data_mod.tokenize_conversation(tokenizer, data_mod.Conversation(messages, unmask, 1))
    return tokenizer.decode([i for i, label in zip(ids, labels, strict=True) if label != data_mod.IGNORE])


def test_loss_on_assistant_content_and_end_of_turn_only(tokenizer) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"},
                {"role": "assistant", "content": "Paris."}, {"role": "user", "content": "And Italy?"},
                {"role": "assistant", "content": "Rome."}]
    assert _trained_text(tokenizer, messages) == "Paris.<|im_end|>Rome.<|im_end|>"
    assert _trained_text(tokenizer, messages, unmask=True) == \
        "Capital of France?<|im_end|>Paris.<|im_end|>And Italy?<|im_end|>Rome.<|im_end|>"


def test_long_samples_are_dropped_and_counted_never_truncated(tokenizer, tmp_path: Path) -> None:
    records = fact_records(4)
    records[1]["messages"][2]["content"] = "word " * 300
    path = write_jsonl(tmp_path / "train.jsonl", records)
    processed = data_mod.process_file(path, tokenizer, max_seq_len=100)
    assert len(processed) == 3 and processed.dropped_too_long == 1
    assert processed.lengths().max() <= 100


def test_processed_data_is_cached_by_file_tokenizer_and_length(tokenizer, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", fact_records(5))
    first = data_mod.process_file(path, tokenizer, 256)
    again = data_mod.process_file(path, tokenizer, 256)
    assert not first.from_cache and again.from_cache
    assert (again.input_ids == first.input_ids).all() and (again.labels == first.labels).all()
    assert not data_mod.process_file(path, tokenizer, 128).from_cache  # another max length: another entry
    write_jsonl(path, fact_records(6))
    assert not data_mod.process_file(path, tokenizer, 256).from_cache  # changed file: re-tokenized
    assert len(list((paths.cache_dir() / "train").glob("*.npz"))) == 3


def test_bad_records_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "x"}]}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1: message 1 must have a role"):
        data_mod.read_conversations(path)
    path.write_text('{"messages": []}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:1: expected an object with a non-empty 'messages'"):
        data_mod.read_conversations(path)


def test_datasets_dir_resolution(tmp_path: Path) -> None:
    run = tmp_path / "datasets" / "2026-01-01"
    knowledge = write_jsonl(run / "knowledge_train_msgs_x.jsonl", fact_records(1))
    skills = write_jsonl(run / "skills_train_msgs_x.jsonl", fact_records(1))
    assert data_mod.find_data_files(tmp_path / "datasets", "knowledge") == [knowledge]
    assert data_mod.find_data_files(run, "skills") == [skills]
    with pytest.raises(DataError, match="No test_"):
        data_mod.find_data_files(run, "test")
