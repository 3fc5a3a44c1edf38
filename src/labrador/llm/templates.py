"""The one chat-template loader: the `chat_template` option of every backend and of `ilab model serve`."""

from __future__ import annotations

from pathlib import Path

from labrador.errors import ModelError

# For models that ship no chat template: ChatML, the most common format of small instruct models.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def load_template(value: str | Path) -> str:
    """`chat_template` option: a path to a Jinja file, or the Jinja text itself."""
    text = str(value)
    if isinstance(value, Path) or "{" not in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise ModelError(f"chat_template '{text}' is neither a Jinja template nor an existing file; pass "
                             "the template text or the path of a file that holds it.")
        from labrador.userfiles import TEXT_FILE, read_text

        return read_text(path, TEXT_FILE)
    return text
