"""Data preparation: everything between the teacher's phase files and the trainer (see docs/data.md).

`prepare(generated, leaves, options, out_dir)` is the entry point; `PrepareOptions` its switches;
`inputs.find_generated` finds a generation run's phase files, `inputs.taxonomy_seeds` the seeds of its leaves.
"""

from labrador.prepare.options import PrepareOptions
from labrador.prepare.run import prepare

__all__ = ["PrepareOptions", "prepare"]
