"""Assignments carry their comparison's study, kind and prompt (copied, never changing), and one
index over what a rater's state reads: the state no longer visits a comparison per task done."""

from typing import Any

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def copy_from_comparisons(apps: Any, schema_editor: Any) -> None:
    Assignment = apps.get_model("raters", "Assignment")
    Comparison = apps.get_model("raters", "Comparison")
    if schema_editor.connection.vendor == "postgresql":
        a, c = Assignment._meta.db_table, Comparison._meta.db_table
        schema_editor.execute(
            f"UPDATE {a} SET study_id = c.study_id, kind = c.kind, prompt_id = c.prompt_id "
            f"FROM {c} c WHERE c.id = {a}.comparison_id"
        )
        return
    source = Comparison.objects.filter(pk=models.OuterRef("comparison_id"))
    copied = ("study_id", "kind", "prompt_id")
    Assignment.objects.update(**{name: models.Subquery(source.values(name)[:1]) for name in copied})


class Migration(migrations.Migration):

    dependencies = [
        ("generation", "0003_imports"),
        ("raters", "0009_min_tasks_for_code"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="assignment",
            name="study",
            field=models.ForeignKey(
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="raters.study",
            ),
        ),
        migrations.AddField(
            model_name="assignment",
            name="kind",
            field=models.CharField(
                choices=[
                    ("real", "Real"),
                    ("gold", "Gold (one side degraded)"),
                    ("mirror", "Mirrored repeat"),
                ],
                default="",
                editable=False,
                max_length=10,
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="assignment",
            name="prompt",
            field=models.ForeignKey(
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="generation.prompt",
            ),
        ),
        migrations.RunPython(copy_from_comparisons, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name="assignment",
            name="study",
            field=models.ForeignKey(
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="raters.study",
            ),
        ),
        migrations.AlterField(
            model_name="assignment",
            name="prompt",
            field=models.ForeignKey(
                db_index=False,
                editable=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="generation.prompt",
            ),
        ),
        migrations.AlterField(
            model_name="assignment",
            name="rater",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="assignments",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddIndex(
            model_name="assignment",
            index=models.Index(
                fields=["rater", "study", "kind", "status", "prompt", "comparison", "id"],
                name="assignment_rater_state",
            ),
        ),
    ]
