"""`ilab pipeline run` through the real console script (validation stage only: the later stages need minutes)."""

from __future__ import annotations

from pathlib import Path

from labrador.workspace import create_sample_taxonomy


def test_pipeline_validates_the_sample_and_writes_a_report(tmp_path: Path, run_ilab) -> None:
    taxonomy = tmp_path / "taxonomy"
    taxonomy.mkdir()
    create_sample_taxonomy(taxonomy)
    run_dir = tmp_path / "run"
    done = run_ilab("pipeline", "run", "--taxonomy-path", str(taxonomy), "--taxonomy-base", "empty",
                    "--run-dir", str(run_dir), "--stop-after", "validate", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "knowledge/geography/towns/kelderwick/qna.yaml (knowledge)" in done.stderr
    report = (run_dir / "report.md").read_text()
    assert "| validate | ran |" in report and "(grounded_skill)" in report
    assert (run_dir / "stamps" / "validate.json").is_file()


def test_pipeline_stops_on_an_invalid_leaf_with_a_clear_message(tmp_path: Path, run_ilab) -> None:
    taxonomy = tmp_path / "taxonomy"
    taxonomy.mkdir()
    create_sample_taxonomy(taxonomy)
    qna = taxonomy / "compositional_skills" / "linguistics" / "synonyms" / "qna.yaml"
    qna.write_text(qna.read_text().replace("task_description:", "task_descripton:"))
    done = run_ilab("pipeline", "run", "--taxonomy-path", str(taxonomy), "--taxonomy-base", "empty",
                    "--run-dir", str(tmp_path / "run"), timeout=120)
    assert done.returncode == 1
    assert "synonyms/qna.yaml" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run" / "stamps" / "generate.json").exists()
