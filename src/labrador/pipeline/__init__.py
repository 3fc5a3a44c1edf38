"""The whole method in one command (`ilab pipeline run`): validate, generate, train, convert, evaluate.

Stages are reused when up to date (stamps under the run directory), so a re-run after a crash or after a change
to one leaf redoes only what is needed. See docs/demo.md. The entry point is
`labrador.pipeline.runner.run_pipeline` with `labrador.pipeline.settings.PipelineSettings`.
"""
