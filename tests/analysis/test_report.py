"""`export_results --format html`: one self-contained report that opens offline."""

import re

import pytest
from django.core.management import CommandError, call_command

from raters.models import Study
from tests.analysis.studies import build_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def report(tmp_path):
    study = build_study(prompts=3, slug="report-study")
    Study.objects.filter(pk=study.pk).update(allow_ties=False, gold_rate=0.1, name="Ablations")
    out = tmp_path / "report.html"
    call_command(
        "export_results", "--study", study.slug, "--format", "html", "--output", str(out),
        "--rounds", "50",
    )  # fmt: skip
    return out


def test_report_has_the_table_agreement_ratings_and_charts(report):
    html = report.read_text()
    table = html.split('id="ablation-table"')[1].split("</table>")[0]
    # quality: A wins the majority on prompts 0 and 2 of 3 → 66.7%
    assert "direct-t2v@v1" in table and "66.7" in table and "[" in table
    assert 'id="agreement"' in html and 'id="ratings"' in html
    assert html.count('class="plotly-graph-div"') >= 4


def test_methods_paragraph_comes_from_the_studys_settings(report):
    methods = re.search(r'<p id="methods">(.*?)</p>', report.read_text(), re.S).group(1)
    assert "30 judgments on 6 comparisons of 3 prompts" in methods
    assert "5 different raters" in methods
    assert "no ties" in methods
    assert "gold comparisons with a degraded side (10% of tasks)" in methods
    assert "prompt-clustered Wilson score interval" in methods
    assert re.search(r"between \d{4}-\d\d-\d\d and \d{4}-\d\d-\d\d", methods)


def test_report_loads_nothing_from_the_network(report):
    html = report.read_text()
    assert "<script>" in html and "<script src" not in html  # plotly.js inlined
    # outside the inlined library's code (which holds link texts of its own), no URL is loaded
    markup = re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", markup)


def test_report_needs_one_study(tmp_path, report):
    with pytest.raises(CommandError, match="give --study"):
        call_command("export_results", "--format", "html", "--output", str(tmp_path / "r.html"))


@pytest.mark.browser
def test_report_draws_its_charts_offline_in_chromium(report):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-background-networking"],
        )
        context = browser.new_context(offline=True)
        page = context.new_page()
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(report.as_uri())
        page.wait_for_selector(".plotly-graph-div .main-svg", timeout=15_000)
        assert page.locator(".plotly-graph-div .main-svg").count() >= 4
        assert [url for url in requests if not url.startswith("file:")] == []
        browser.close()


def test_summary_prints_one_short_line_per_pair_and_the_ratings():
    import pandas as pd

    from analysis import present
    from analysis.summary import ablation_table, side_by_side, summarise
    from analysis.synthetic import SimulatedPair, simulate_judgments

    pairs = [
        SimulatedPair("factorized", "direct", 0.7, 0.6),
        SimulatedPair("zero-snr", "standard-schedule", 0.9, 0.8),
        SimulatedPair("frozen-spatial", "all-finetuned", 0.55, 0.55),
    ]
    summary = summarise(simulate_judgments(pairs=pairs, prompts=30, seed=1), rounds=50)
    table = side_by_side(ablation_table(summary), ablation_table(summary)).assign(study="s")
    ratings = pd.concat(summary.ratings.values(), ignore_index=True).assign(study="s")

    text = present.terminal_report(table, ratings)

    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120  # no 40-column row wrapping on a terminal
    # one row per pair, then one per variant and question (6 variants)
    assert sum(line.startswith("s ") for line in lines) == 3 + 2 * 6
    assert "Bradley–Terry" in text and "prompt-clustered Wilson" in text
