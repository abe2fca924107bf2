"""Studies, blinded comparisons, per-rater assignments and JUICE judgments."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Study(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    batch = models.ForeignKey(
        "generation.GenerationBatch", on_delete=models.PROTECT, related_name="studies"
    )
    raters_per_pair = models.PositiveIntegerField(default=5)
    allow_ties = models.BooleanField(
        default=True, help_text="A study that replicates the paper forbids ties (SPEC §3)."
    )
    is_active = models.BooleanField(default=True)
    completion_code = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.name


class Rater(models.Model):
    """A person who rates: a site login, or a crowd worker who arrived through a start link."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rater"
    )
    external_id = models.CharField(max_length=200, blank=True, db_index=True)
    is_simulated = models.BooleanField(default=False)
    is_flagged = models.BooleanField(
        default=False, help_text="Stopped by quality control; judgments kept but flagged."
    )
    flagged_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.external_id or str(self.user)


class VariantPair(models.Model):
    """One row of the ablation table: variant A (the design) against variant B."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="pairs")
    variant_a = models.ForeignKey(
        "generation.ModelVariant", on_delete=models.PROTECT, related_name="+"
    )
    variant_b = models.ForeignKey(
        "generation.ModelVariant", on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["study", "variant_a", "variant_b"], name="pair_unique_per_study"
            ),
            models.CheckConstraint(
                condition=~Q(variant_a=F("variant_b")), name="pair_variants_differ"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.variant_a} vs {self.variant_b}"


class Comparison(models.Model):
    """Two videos of the same prompt, A from the pair's variant A and B from variant B."""

    class Kind(models.TextChoices):
        REAL = "real", "Real"
        GOLD = "gold", "Gold (one side degraded)"
        MIRROR = "mirror", "Mirrored repeat"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="comparisons")
    pair = models.ForeignKey(VariantPair, on_delete=models.CASCADE, related_name="comparisons")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.REAL, db_index=True)
    prompt = models.ForeignKey("generation.Prompt", on_delete=models.PROTECT, related_name="+")
    video_a = models.ForeignKey("generation.Video", on_delete=models.PROTECT, related_name="+")
    video_b = models.ForeignKey("generation.Video", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(video_a=F("video_b")), name="comparison_a_ne_b"),
            models.UniqueConstraint(
                fields=["study", "video_a", "video_b"], name="comparison_unique_videos"
            ),
        ]

    def __str__(self) -> str:
        return f"comparison {self.pk}"


class Assignment(models.Model):
    """A comparison held for one rater; `token` is the only id a rater ever sees."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DONE = "done", "Done"
        EXPIRED = "expired", "Expired"

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="assignments")
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    left_is_a = models.BooleanField()
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.ACTIVE, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "rater"], name="assignment_once_per_rater"
            )
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk}"


class Judgment(models.Model):
    """JUICE answers, stored in A/B terms (the side shown left is on the assignment)."""

    class Choice(models.TextChoices):
        A = "a", "A"
        B = "b", "B"
        TIE = "tie", "Tie"

    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="judgment")
    quality = models.CharField(max_length=3, choices=Choice.choices)
    quality_reasons = models.JSONField(default=list)
    faithfulness = models.CharField(max_length=3, choices=Choice.choices)
    faithfulness_reasons = models.JSONField(default=list)
    time_spent_ms = models.PositiveIntegerField(default=0)
    watch_ms = models.PositiveIntegerField(default=0, help_text="Time the clips were playing.")
    replays = models.PositiveIntegerField(default=0)
    seeks = models.PositiveIntegerField(default=0)
    is_flagged = models.BooleanField(default=False, help_text="The rater failed quality control.")
    is_simulated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"judgment {self.pk}"
