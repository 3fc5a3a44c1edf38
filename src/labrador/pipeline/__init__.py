"""The whole method in one command (`ilab pipeline run`): validate, generate, train, convert, evaluate.

Stages are reused when up to date (stamps under the run directory), so a re-run after a crash or after a change
to one leaf redoes only what is needed. See docs/demo.md.
"""

from labrador.pipeline.settings import PipelineSettings

__all__ = ["PipelineSettings", "run_pipeline"]


def run_pipeline(*args, **kwargs):
    from labrador.pipeline.runner import run_pipeline as _run

    return _run(*args, **kwargs)
