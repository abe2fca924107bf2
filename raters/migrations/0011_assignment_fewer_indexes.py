"""Assignments: the open tasks indexed by expiry (a partial index, which a flip to done does not
write), in place of indexes on status, on expiry and on the comparison alone (the unique
(comparison, rater) index serves lookups by comparison)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('generation', '0003_imports'),
        ('raters', '0010_assignment_comparison_copies'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='assignment',
            name='comparison',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='assignments', to='raters.comparison'),
        ),
        migrations.AlterField(
            model_name='assignment',
            name='expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='assignment',
            name='status',
            field=models.CharField(choices=[('active', 'Active'), ('done', 'Done'), ('expired', 'Expired')], default='active', max_length=20),
        ),
        migrations.AddIndex(
            model_name='assignment',
            index=models.Index(condition=models.Q(('status', 'active')), fields=['expires_at'], name='assignment_open_expiry'),
        ),
    ]
