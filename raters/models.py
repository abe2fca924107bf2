"""Studies, blinded comparisons, per-rater assignments and JUICE judgments."""

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Study(models.Model):
    class Mode(models.TextChoices):
        FIXED = "fixed", "Fixed: every comparison to k raters"
        ADAPTIVE = "adaptive", "Adaptive: most uncertain pairs first"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    # Where the study's videos come from: a pair of variants is matched on prompt text and
    # seed across all of them, whichever source each video came from (raters.studies).
    batches = models.ManyToManyField(
        "generation.GenerationBatch",
        related_name="studies",
        blank=True,
        help_text="Source batches the comparisons draw their videos from.",
    )
    raters_per_pair = models.PositiveIntegerField(default=5)
    allow_ties = models.BooleanField(
        default=True, help_text="A study that replicates a forced-choice design forbids ties."
    )
    is_active = models.BooleanField(
        default=True, help_text="Handing out tasks; off while paused or once closed."
    )
    deactivated_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the study was last paused or closed: tasks claimed before then may "
        "still be submitted for JUICE_CLOSE_GRACE_MINUTES.",
    )
    closed_at = models.DateTimeField(
        null=True, blank=True, help_text="Closed for good: it cannot be resumed."
    )
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.FIXED)
    allow_repeat_prompts = models.BooleanField(
        default=False, help_text="Let a rater see the same prompt more than once in this study."
    )
    tasks_per_rater = models.PositiveIntegerField(
        default=0, help_text="Tasks one rater does before the finish page; 0 = until none left."
    )
    # Quality control.
    require_qualification = models.BooleanField(
        default=True, help_text="Raters pass the qualification quiz before the first task."
    )
    gold_rate = models.FloatField(
        default=0.1, help_text="Share of a rater's tasks that are hidden gold comparisons."
    )
    mirror_rate = models.FloatField(
        default=0.05, help_text="Share of tasks that repeat an earlier pair with sides swapped."
    )
    gold_accuracy_threshold = models.FloatField(
        default=0.7, help_text="A rater whose gold accuracy falls under this is stopped."
    )
    gold_min_answers = models.PositiveIntegerField(
        default=3, help_text="Gold answers needed before the threshold applies."
    )
    min_watch_ms = models.PositiveIntegerField(
        default=2000, help_text="Minimum playing time before a judgment is accepted."
    )
    assignment_timeout_minutes = models.PositiveIntegerField(
        default=30, help_text="An unanswered assignment returns to the pool after this."
    )
    break_every = models.PositiveIntegerField(
        default=15, help_text="Suggest a break after this many tasks in a row (0 = never)."
    )
    # Adaptive mode (agreement needs a k-rater overlap on a calibration subset).
    calibration_fraction = models.FloatField(
        default=0.2, help_text="Adaptive: share of comparisons always rated by k raters."
    )
    target_ci_width = models.FloatField(
        default=0.2, help_text="Adaptive: stop once every pair's 95% CI is narrower than this."
    )
    # Crowd platforms.
    external_id_param = models.CharField(
        max_length=50, default="PROLIFIC_PID", help_text="Query parameter of start links."
    )
    completion_code = models.CharField(max_length=64, blank=True)
    screenout_code = models.CharField(max_length=64, blank=True)
    min_tasks_for_code = models.PositiveIntegerField(
        default=1,
        help_text="Real tasks a rater must have done to get the completion code when the study "
        "runs out of work for them before their quota.",
    )
    completion_url = models.URLField(
        blank=True,
        help_text="Crowd platform page for finished workers; {code} is replaced by the code, "
        "e.g. https://app.prolific.com/submissions/complete?cc={code}",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.name

    def return_url(self, code: str) -> str:
        return self.completion_url.replace("{code}", code) if self.completion_url else ""

    @property
    def state(self) -> str:
        """'open', 'paused' or 'closed', as the staff pages say it."""
        if self.closed_at is not None:
            return "closed"
        return "open" if self.is_active else "paused"


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
    flagged_at = models.DateTimeField(null=True, blank=True)
    qualified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the rater passed the qualification quiz."
    )
    quiz_attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.external_id or str(self.user)

    @property
    def is_qualified(self) -> bool:
        return self.qualified_at is not None

    @property
    def worker_id(self) -> str:
        """The id staff pay under: the crowd platform's worker id, else the site username."""
        return self.external_id or self.user.get_username()


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


def gold_upload_path(instance: "GoldClip", filename: str) -> str:
    # Opaque like generation's videos: a file name must not tell a rater it is a gold clip.
    return f"clips/{uuid.uuid4().hex}{filename[filename.rfind('.') :]}"


class GoldClip(models.Model):
    """A degraded copy of a real video: the side of a gold comparison that should lose."""

    class Degradation(models.TextChoices):
        FROZEN = "frozen", "Frozen frames"
        BLUR = "blur", "Heavy blur"
        SHUFFLED = "shuffled", "Shuffled frames"
        OTHER_PROMPT = "other_prompt", "Video of a different prompt"

    source = models.ForeignKey("generation.Video", on_delete=models.PROTECT, related_name="+")
    degradation = models.CharField(max_length=20, choices=Degradation.choices)
    file = models.FileField(upload_to=gold_upload_path, max_length=300)
    poster = models.FileField(upload_to=gold_upload_path, max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.get_degradation_display()} of video {self.source_id}"


class PresentedClip(models.Model):
    """A video prepared in the shared presentation of a pair it is compared in: the smaller
    size, frame rate and length of the two, one encoding (generation.video.presentation).

    Prepared once per study by the `raters.prepare_clip` task, and deleted with the study."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="presented_clips")
    video = models.ForeignKey("generation.Video", on_delete=models.CASCADE, related_name="+")
    presentation = models.CharField(max_length=60, help_text="width x height @ fps x frames")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    fps = models.PositiveIntegerField()
    frames = models.PositiveIntegerField()
    file = models.FileField(upload_to=gold_upload_path, max_length=300, blank=True)
    poster = models.FileField(upload_to=gold_upload_path, max_length=300, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "video", "presentation"], name="presented_clip_unique"
            )
        ]

    def __str__(self) -> str:
        return f"video {self.video_id} at {self.presentation}"

    @property
    def is_prepared(self) -> bool:
        return bool(self.file)


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
    # Gold: side B is served from `gold_clip` (a degraded copy) and A is the expected winner.
    gold_clip = models.ForeignKey(
        GoldClip, null=True, blank=True, on_delete=models.PROTECT, related_name="comparisons"
    )
    gold_question = models.CharField(
        max_length=20, blank=True, help_text="Gold: the question whose answer must be A."
    )
    mirror_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="mirrors"
    )
    # Videos of different formats are shown in one presentation (PresentedClip); a comparison
    # is handed out only once both of its clips are prepared. Without them it would show the
    # formats, so it goes with them (as both go with the study).
    shown_a = models.ForeignKey(
        PresentedClip, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    shown_b = models.ForeignKey(
        PresentedClip, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    is_ready = models.BooleanField(
        default=True, help_text="False while its clips are being prepared in one presentation."
    )
    is_calibration = models.BooleanField(
        default=False, help_text="Adaptive studies always give these k raters (agreement)."
    )
    assigned_count = models.PositiveIntegerField(
        default=0, help_text="Active or done assignments of raters in good standing."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~Q(video_a=F("video_b")), name="comparison_a_ne_b"),
            models.UniqueConstraint(
                fields=["study", "video_a", "video_b"],
                condition=Q(kind="real"),
                name="comparison_unique_videos",
            ),
            models.UniqueConstraint(
                fields=["mirror_of"], condition=Q(kind="mirror"), name="comparison_one_mirror"
            ),
        ]
        # In the order assignment reads them (fewest raters, then oldest): the first free
        # row is found without sorting the study.
        indexes = [
            models.Index(
                fields=["study", "kind", "assigned_count", "id"], name="comparison_free_slots"
            )
        ]

    def __str__(self) -> str:
        return f"comparison {self.pk}"


class Assignment(models.Model):
    """A comparison held for one rater; `token` is the only id a rater ever sees."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DONE = "done", "Done"
        EXPIRED = "expired", "Expired"

    comparison = models.ForeignKey(
        Comparison,
        on_delete=models.CASCADE,
        related_name="assignments",
        db_index=False,  # assignment_once_per_rater leads with the comparison
    )
    rater = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="assignments",
        db_index=False,  # assignment_rater_state leads with the rater
    )
    # The comparison's study, kind and prompt, copied when the assignment is made (`save` and
    # raters.hot_path fill them; a comparison's never change). A rater's state in a study is
    # then read from one index, assignment_rater_state, without visiting a comparison per task
    # done: reading it no longer grows with the rater's history.
    study = models.ForeignKey(
        Study, on_delete=models.CASCADE, related_name="+", db_index=False, editable=False
    )
    kind = models.CharField(max_length=10, choices=Comparison.Kind.choices, editable=False)
    prompt = models.ForeignKey(
        "generation.Prompt",
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        editable=False,
    )
    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    left_is_a = models.BooleanField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["comparison", "rater"], name="assignment_once_per_rater"
            )
        ]
        indexes = [
            # Everything a rater's state and the claims' "not seen yet" read (hot_path).
            models.Index(
                fields=["rater", "study", "kind", "status", "prompt", "comparison", "id"],
                name="assignment_rater_state",
            ),
            # Open tasks by expiry, for the sweep: it holds the open tasks only, so a task's
            # flip to done adds no entry to it (nor to indexes on status or expiry alone).
            models.Index(
                fields=["expires_at"],
                condition=Q(status="active"),
                name="assignment_open_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The copies follow the comparison however it was set (create(), an admin's form).
        if self.comparison_id is not None and (
            self.study_id is None or Assignment.comparison.is_cached(self)
        ):
            copy_comparison_fields(self)
        super().save(*args, **kwargs)


def copy_comparison_fields(assignment: Assignment) -> None:
    """Set the assignment's copies of its comparison's study, kind and prompt."""
    comparison = assignment.comparison
    assignment.study_id = comparison.study_id
    assignment.kind = comparison.kind
    assignment.prompt_id = comparison.prompt_id


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
    played_through = models.BooleanField(default=False)
    gold_correct = models.BooleanField(
        null=True, blank=True, help_text="Gold comparisons only: the degraded side lost."
    )
    mirror_consistent = models.BooleanField(
        null=True, blank=True, help_text="Mirrored repeats only: same answers as the first time."
    )
    is_flagged = models.BooleanField(default=False, help_text="The rater failed quality control.")
    is_simulated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"judgment {self.pk}"
