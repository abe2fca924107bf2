"""Migration 0010: existing assignments get their comparison's study, kind and prompt."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from raters import services
from raters.models import Assignment
from tests.raters.helpers import build_study, judge, qualified_rater

BEFORE = [("raters", "0009_min_tasks_for_code")]
AFTER = [("raters", "0010_assignment_comparison_copies")]


def _migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _check_existing_assignments_get_their_comparisons_fields() -> None:
    study = build_study(prompts=4, gold_comparisons=2, gold_rate=0.5, min_watch_ms=0)
    rater = qualified_rater()
    for _ in range(4):
        judge(services.next_assignment(study=study, rater=rater))
    assert Assignment.objects.count() == 4
    _migrate(BEFORE)  # the copies' columns are dropped
    try:
        _migrate(AFTER)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT a.study_id, a.kind, a.prompt_id, c.study_id, c.kind, c.prompt_id "
                "FROM raters_assignment a JOIN raters_comparison c ON c.id = a.comparison_id"
            )
            rows = cursor.fetchall()
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    assert len(rows) == 4 and {row[1] for row in rows} == {"real", "gold"}
    for row in rows:
        assert row[:3] == row[3:]


@pytest.mark.django_db(transaction=True)
def test_on_the_default_database() -> None:
    _check_existing_assignments_get_their_comparisons_fields()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_on_postgresql() -> None:
    assert connection.vendor == "postgresql"
    _check_existing_assignments_get_their_comparisons_fields()
