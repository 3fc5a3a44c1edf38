"""Entry point of each torchrun process: `python -m labrador.train.worker OPTIONS.json`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from labrador.errors import LabradorError
from labrador.train.options import TrainOptions


def main(argv: list[str]) -> int:
    from labrador.train.run import run_training

    opts = TrainOptions.from_dict(json.loads(Path(argv[0]).read_text(encoding="utf-8")))
    try:
        run_training(opts)
    except LabradorError as err:
        print(f"Error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
