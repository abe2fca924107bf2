"""The analysis notebook runs top to bottom on a fresh export and rebuilds the same table."""

from pathlib import Path

import nbformat
import pandas as pd
import pytest
from django.core.management import call_command
from nbclient import NotebookClient

from analysis import queries
from analysis.summary import ablation_table, summarise
from tests.analysis.studies import build_study

NOTEBOOK = Path(__file__).resolve().parents[2] / "analysis" / "notebooks" / "ablation_table.ipynb"


@pytest.mark.django_db
def test_notebook_rebuilds_the_ablation_table_and_fig6_from_an_export(tmp_path, monkeypatch):
    # given an export of a rated study
    study = build_study(prompts=3, slug="notebook-study")
    export_path = tmp_path / "judgments.csv"
    call_command(
        "export_results", "--study", study.slug, "--format", "csv", "--output", str(export_path)
    )
    monkeypatch.setenv("JUICE_EXPORT", str(export_path))
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
