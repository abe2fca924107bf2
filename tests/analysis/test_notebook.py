"""The analysis notebook runs top to bottom on a fresh export and rebuilds the same table."""

import os
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from django.core.management import call_command
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from analysis import export, queries
from analysis.summary import ablation_table, summarise
from tests.analysis.studies import build_study

NOTEBOOK = Path(__file__).resolve().parents[2] / "analysis" / "notebooks" / "ablation_table.ipynb"


@pytest.mark.django_db
def test_notebook_rebuilds_the_ablation_table_and_fig6_from_an_export(
    tmp_path, monkeypatch, settings
):
    # given a rated study exported where export_results puts it without --output
    study = build_study(prompts=3, slug="notebook-study")
    settings.VAR_DIR = tmp_path / "var"
    call_command("export_results", "--study", study.slug, "--format", "csv")
    assert (tmp_path / "var" / "exports" / study.slug / "judgments.csv").exists()
    # the notebook finds the newest export of the study by itself
    monkeypatch.delenv("JUICE_EXPORT", raising=False)
    monkeypatch.setenv("JUICE_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("JUICE_STUDY", study.slug)
    monkeypatch.setenv("JUICE_ROUNDS", "200")
    monkeypatch.setenv("JUICE_OUTPUT_DIR", str(tmp_path))
    # the kernel imports this checkout's analysis package, not whichever one pip installed
    monkeypatch.setenv("PYTHONPATH", str(NOTEBOOK.parents[2]))

    # when the notebook runs top to bottom in a fresh kernel
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()

    # then its table equals the one computed straight from the database
    rebuilt = pd.read_csv(tmp_path / "ablation_table.csv")
    expected = ablation_table(summarise(queries.judgment_frame(study=study), rounds=200, seed=0))
    assert list(rebuilt["pair"]) == list(expected["pair"])
    for column in ("quality_win_rate", "quality_lo", "quality_hi", "faithfulness_win_rate"):
        assert rebuilt[column].tolist() == pytest.approx(expected[column].tolist()), column
    fig6 = pd.read_csv(tmp_path / "fig6_reasons.csv")
    assert set(fig6["label"]) >= {"Pixel sharpness", "Spatial text alignment"}
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in outputs)


def test_notebook_without_an_export_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.delenv("JUICE_EXPORT", raising=False)
    monkeypatch.setenv("JUICE_VAR_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("JUICE_STUDY", "my-study")
    monkeypatch.setenv("PYTHONPATH", str(NOTEBOOK.parents[2]))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    with pytest.raises(CellExecutionError) as failed:
        NotebookClient(
            notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
        ).execute()
    assert "python manage.py export_results --study my-study --format csv" in str(failed.value)


def test_latest_export_is_the_newest_judgments_file(tmp_path):
    folder = tmp_path / "s1"
    folder.mkdir()
    old, new = folder / "a.csv", folder / "b.parquet"
    old.write_text("x")
    new.write_text("x")
    os.utime(old, (1, 1))
    (folder / "b.parquet.summary.csv").write_text("x")
    assert export.latest_export(exports=tmp_path, study="s1") == new
    assert export.latest_export(exports=tmp_path) == new
    assert export.latest_export(exports=tmp_path, study="other") is None
