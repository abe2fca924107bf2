"""Migration 0006: each existing study keeps drawing from the batch it was built on."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("raters", "0005_comparison_free_slots_index"), ("generation", "0002_orchestration")]
AFTER = [("raters", "0006_i15_study_sources_and_close")]


def test_a_study_built_on_one_batch_has_that_batch_as_its_source():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    prompt_set = old.get_model("generation", "PromptSet").objects.create(name="p", slug="p")
    batch = old.get_model("generation", "GenerationBatch").objects.create(
        name="b", prompt_set=prompt_set
    )
    old.get_model("raters", "Study").objects.create(name="s", slug="s", batch=batch)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    study = new.get_model("raters", "Study").objects.get(slug="s")

    assert list(study.batches.values_list("pk", flat=True)) == [batch.pk]
    assert study.is_active and study.closed_at is None

    # and back: the first source becomes the batch again
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(BEFORE)
    back = executor.loader.project_state(BEFORE).apps
    assert back.get_model("raters", "Study").objects.get(slug="s").batch_id == batch.pk
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
