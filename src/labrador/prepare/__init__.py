"""Data preparation: everything between the teacher's output and the trainer (see docs/data.md).

`prepare(dataset_dir, leaves, options, out_dir)` is the entry point; `PrepareOptions` its switches;
`inputs.load_phases` reads a generation run by phase (`mix` mixes labrador's), `inputs.taxonomy_seeds` the
seeds of its leaves.
"""

from labrador.prepare.options import PrepareOptions
from labrador.prepare.run import prepare

__all__ = ["PrepareOptions", "prepare"]
