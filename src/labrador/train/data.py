"""Training data: read `messages` JSONL, render with the student's chat template, mask labels, cache on disk.

Labels follow InstructLab's rule: loss falls on assistant content and its end-of-turn token only (system and
user tokens get -100); a sample with ``"unmask": true`` also trains on user turns (never on system turns).
A sample with ``"anchor": true`` is an *anchor*: its assistant tokens are trained to keep the phase's starting
model's next-token distribution (KL, see `batching.summed_loss`) rather than to reproduce its text; the
pipeline marks its self-replay rows so (docs/training.md, "Anchor rows").
Samples longer than ``max_seq_len`` are dropped and counted, never truncated: a cut answer teaches the model
to stop mid-sentence.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labrador import paths
from labrador.errors import DataError
from labrador.files import atomic_write_bytes, iter_objects

IGNORE = -100
ROLES = ("system", "user", "assistant")
CACHE_FORMAT = 2  # bump when the processing rules change, so old caches are not reused


@dataclass
class Conversation:
    messages: list[dict[str, str]]
    unmask: bool
    line: int
    anchor: bool = False


@dataclass
class ProcessedData:
    """Token ids and labels of every kept sample, concatenated; ``offsets[i]:offsets[i+1]`` is sample i."""

    input_ids: np.ndarray
    labels: np.ndarray
    offsets: np.ndarray
    source: str
    dropped_too_long: int = 0
    dropped_no_loss: int = 0
    from_cache: bool = False
    anchors: np.ndarray | None = None  # bool per sample; None: no anchor rows

    def is_anchor(self, i: int) -> bool:
        return self.anchors is not None and bool(self.anchors[i])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def loss_tokens(self) -> np.ndarray:
        """Tokens that count in the loss per sample (a label at position t is predicted from t-1)."""
        counts = np.add.reduceat((self.labels != IGNORE).astype(np.int64), self.offsets[:-1])
        first = self.labels[self.offsets[:-1]] != IGNORE  # the first token of a sample is never predicted
        return counts - first

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.input_ids[a:b], self.labels[a:b]

    def subset(self, indices: list[int]) -> ProcessedData:
        parts = [self.sample(i) for i in indices]
        lengths = np.array([len(p[0]) for p in parts], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int32)
        labels = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int32)
        anchors = self.anchors[indices] if self.anchors is not None else None
        return ProcessedData(ids, labels, offsets, self.source, anchors=anchors)


def read_conversations(path: Path) -> list[Conversation]:
    """Validate and read a messages JSONL file; DataError naming file and line for anything malformed."""
    if not path.is_file():
        raise DataError(f"Training data file {path} does not exist; run `ilab data generate` or pass --data-path.")
    conversations = [_parse_record(record, path, number)
                     for number, record in iter_objects(path, "one JSON object with a 'messages' list")]
    if not conversations:
        raise DataError(f"{path} is empty: it holds no conversations. Generate data with `ilab data generate` "
                        "or point --data-path at a non-empty messages JSONL file.")
    return conversations


def _parse_record(record: Any, path: Path, number: int) -> Conversation:
    where = f"{path}:{number}"
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list) or not record["messages"]:
        raise DataError(f"{where}: expected an object with a non-empty 'messages' list "
                        '({"messages": [{"role": "user", "content": "..."}, ...]}).')
    messages = []
    for i, message in enumerate(record["messages"]):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise DataError(f"{where}: message {i} must have a role of {', '.join(ROLES)}; "
                            f"got {message.get('role') if isinstance(message, dict) else message!r}.")
        if not isinstance(message.get("content"), str):
            raise DataError(f"{where}: message {i} ({message['role']}) has no text 'content'.")
        messages.append({"role": message["role"], "content": message["content"]})
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError(f"{where}: the conversation has no assistant turn, so there is nothing to learn from it; "
                        "every sample needs at least one message with role 'assistant'.")
    return Conversation(messages, bool(record.get("unmask", False)), number, bool(record.get("anchor", False)))


def _render(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    if not messages:
        return ""
    return tokenizer.apply_chat_template(messages, tokenize=False)


def loss_spans(tokenizer: Any, conv: Conversation) -> tuple[str, list[tuple[int, int]]]:
    """The rendered text and the character spans that carry loss.

    Each turn's text is the difference between rendering the first i+1 and the first i messages; its loss span
    runs from the start of the content to the end of the turn, trailing whitespace stripped, which covers the
    end-of-turn token (`<|im_end|>`, `<|eot_id|>`, ...) but not the newline after it.
    """
    text = _render(tokenizer, conv.messages)
    spans: list[tuple[int, int]] = []
    previous = ""
    for i, message in enumerate(conv.messages):
        rendered = _render(tokenizer, conv.messages[: i + 1])
        if not rendered.startswith(previous) or not text.startswith(rendered):
            raise DataError(f"line {conv.line}: the model's chat template renders earlier turns differently once "
                            "later turns are added, so loss masks cannot be placed; use a model with a "
                            "prefix-stable template.")
        trains = message["role"] == "assistant" or (conv.unmask and message["role"] == "user")
        if trains:
            turn = rendered[len(previous):]
            start = turn.rfind(message["content"]) if message["content"] else -1
            start = len(previous) + (start if start >= 0 else 0)
            end = len(previous) + len(turn.rstrip())
            if end > start:
                spans.append((start, end))
        previous = rendered
    return text, spans


def tokenize_conversation(tokenizer: Any, conv: Conversation) -> tuple[list[int], list[int]]:
    """Token ids and labels (-100 outside the loss spans) of one conversation."""
    text, spans = loss_spans(tokenizer, conv)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = encoded["input_ids"]
    labels = [IGNORE] * len(ids)
    span_index = 0
    for t, (start, end) in enumerate(encoded["offset_mapping"]):
        while span_index < len(spans) and spans[span_index][1] <= start:
            span_index += 1
        if span_index < len(spans) and start < spans[span_index][1] and end > spans[span_index][0]:
            labels[t] = ids[t]
    return ids, labels


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A hash of everything in the tokenizer that changes token ids or labels."""
    digest = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    digest.update(backend.to_str().encode() if backend is not None else repr(sorted(tokenizer.get_vocab().items())).encode())
    digest.update(str(getattr(tokenizer, "chat_template", "")).encode())
    return digest.hexdigest()[:16]


def _file_hash(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()[:16]


def cache_path(path: Path, tokenizer: Any, max_seq_len: int) -> Path:
    key = f"{_file_hash(path)}-{tokenizer_fingerprint(tokenizer)}-{max_seq_len}-v{CACHE_FORMAT}"
    return paths.cache_dir() / "train" / f"{path.stem}-{key}.npz"


def process_file(path: Path, tokenizer: Any, max_seq_len: int, use_cache: bool = True) -> ProcessedData:
    """Tokenize and mask one messages JSONL file, reusing the on-disk cache keyed by (file, tokenizer, max len)."""
    conversations = read_conversations(path)  # validates even when cached: cheap, and errors stay visible
    cached = cache_path(path, tokenizer, max_seq_len)
    if use_cache and cached.is_file():
        with np.load(cached) as archive:
            meta = json.loads(str(archive["meta"]))
            anchors = archive["anchors"] if bool(archive["anchors"].any()) else None
            return ProcessedData(archive["input_ids"], archive["labels"], archive["offsets"], str(path),
                                 meta["dropped_too_long"], meta["dropped_no_loss"], from_cache=True,
                                 anchors=anchors)
    all_ids: list[int] = []
    all_labels: list[int] = []
    offsets = [0]
    anchor_flags: list[bool] = []
    too_long = no_loss = 0
    for conv in conversations:
        ids, labels = tokenize_conversation(tokenizer, conv)
        if len(ids) > max_seq_len:
            too_long += 1
            continue
        if sum(1 for label in labels[1:] if label != IGNORE) == 0:
            no_loss += 1  # e.g. an empty assistant answer: nothing to learn, and it would divide by zero
            continue
        all_ids.extend(ids)
        all_labels.extend(labels)
        offsets.append(len(all_ids))
        anchor_flags.append(conv.anchor)
    if len(offsets) == 1:
        raise DataError(f"{path}: all {len(conversations)} conversations are longer than --max-seq-len "
                        f"{max_seq_len} tokens or have empty answers; raise --max-seq-len or shorten the data.")
    data = ProcessedData(np.array(all_ids, dtype=np.int32), np.array(all_labels, dtype=np.int32),
                         np.array(offsets, dtype=np.int64), str(path), too_long, no_loss,
                         anchors=np.array(anchor_flags, dtype=bool) if any(anchor_flags) else None)
    if use_cache:
        _write_cache(cached, data)
    return data


def _write_cache(target: Path, data: ProcessedData) -> None:
    meta = json.dumps({"dropped_too_long": data.dropped_too_long, "dropped_no_loss": data.dropped_no_loss})
    anchors = data.anchors if data.anchors is not None else np.zeros(len(data), dtype=bool)
    archive = io.BytesIO()
    np.savez(archive, input_ids=data.input_ids, labels=data.labels, offsets=data.offsets, anchors=anchors,
             meta=np.array(meta))
    atomic_write_bytes(target, archive.getvalue())


def process_files(files: list[Path], tokenizer: Any, max_seq_len: int, use_cache: bool = True) -> ProcessedData:
    """Several files concatenated (a mix of knowledge files, say), in the given order."""
    parts = [process_file(f, tokenizer, max_seq_len, use_cache) for f in files]
    if len(parts) == 1:
        return parts[0]
    offsets = [0]
    for part in parts:
        offsets.extend((part.offsets[1:] + offsets[-1]).tolist())
    anchors = None
    if any(p.anchors is not None for p in parts):
        anchors = np.concatenate([p.anchors if p.anchors is not None else np.zeros(len(p), dtype=bool)
                                  for p in parts])
    return ProcessedData(np.concatenate([p.input_ids for p in parts]), np.concatenate([p.labels for p in parts]),
                         np.array(offsets, dtype=np.int64), ",".join(str(f) for f in files),
                         sum(p.dropped_too_long for p in parts), sum(p.dropped_no_loss for p in parts),
                         all(p.from_cache for p in parts), anchors=anchors)


def split_held_out(data: ProcessedData, fraction: float, seed: int) -> tuple[ProcessedData, ProcessedData | None]:
    """A deterministic held-out split for scoring checkpoints; none when the data is too small to spare any."""
    n = len(data)
    if fraction <= 0 or n < 4:
        return data, None
    count = max(1, min(int(round(n * fraction)), 500))
    order = np.random.RandomState(seed).permutation(n).tolist()
    held, kept = sorted(order[:count]), sorted(order[count:])
    train = data.subset(kept)
    train.dropped_too_long, train.dropped_no_loss, train.from_cache = (data.dropped_too_long,
                                                                        data.dropped_no_loss, data.from_cache)
    return train, data.subset(held)


def find_data_files(data_path: Path, kind: str) -> list[Path]:
    """Training files of one kind ("knowledge", "skills" or "test") in a datasets dir or run dir.

    A file is used as is. A directory is searched for `<kind>_train_msgs_*.jsonl` (`test_*.jsonl` for "test");
    when it has none, its newest sub-directory (a run's `prepared/`, a run, or a run's `prepared/` under a
    datasets dir) that has some is used.
    """
    if data_path.is_file():
        return [data_path]
    if not data_path.is_dir():
        raise DataError(f"--data-path {data_path} does not exist; run `ilab data generate` first or pass a "
                        "messages JSONL file.")
    pattern = "test_*.jsonl" if kind == "test" else f"{kind}_train_msgs_*.jsonl"
    found = sorted(data_path.glob(pattern))
    if found:
        return found
    runs = sorted((d for d in [*data_path.iterdir(), *data_path.glob("*/prepared")] if d.is_dir() and any(d.glob(pattern))),
                  key=lambda d: d.stat().st_mtime)
    if runs:
        return sorted(runs[-1].glob(pattern))
    raise DataError(f"No {pattern} files in {data_path} or its run directories; run `ilab data generate`, then "
                    "`ilab data prepare RUN_DIR`, or pass --data-path with a messages JSONL file.")
