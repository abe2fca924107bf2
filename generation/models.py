"""Model variants, prompts, generation batches, their jobs and the videos they produce."""

import uuid

from django.conf import settings
from django.db import models


def video_upload_path(instance: "Video", filename: str) -> str:
    # Opaque names: nothing in a path tells a rater which variant made the video.
    return f"videos/{uuid.uuid4().hex}{filename[filename.rfind('.') :]}"


def poster_upload_path(instance: "Video", filename: str) -> str:
    return f"posters/{uuid.uuid4().hex}.png"


class ModelVariant(models.Model):
    """A named, versioned generation config . Immutable once used in a batch."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100)
    version = models.PositiveIntegerField(default=1)
    description = models.TextField(blank=True)
    config = models.JSONField(help_text="Validated by generation.video.config.VariantConfig.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug", "version"]
        constraints = [
            models.UniqueConstraint(fields=["slug", "version"], name="variant_unique_slug_version")
        ]

    def __str__(self) -> str:
        return f"{self.name} (v{self.version})"


class PromptSet(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    source_file = models.CharField(
        max_length=255, blank=True, help_text="The uploaded file the prompts came from."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Prompt(models.Model):
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="prompts")
    external_id = models.CharField(max_length=100)
    text = models.TextField()
    category = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["prompt_set", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["prompt_set", "external_id"], name="prompt_unique_external_id"
            )
        ]

    def __str__(self) -> str:
        return self.text[:80]


class GenerationBatch(models.Model):
    """Every variant × every prompt of a set × `seeds` seeds, rendered on the `gpu` queue; or,
    for an import, one job per file of an imported variant, transcoded on the `default` queue."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    class Kind(models.TextChoices):
        RENDER = "render", "Rendered by the workers"
        IMPORT = "import", "Imported videos"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.RENDER)
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.PROTECT, related_name="batches")
    variants = models.ManyToManyField(ModelVariant, related_name="batches")
    seeds = models.PositiveIntegerField(default=1)
    chunk_size = models.PositiveIntegerField(
        default=8, help_text="Jobs of one variant per GPU task: the model is loaded once per task."
    )
    sample_batch = models.PositiveIntegerField(
        default=4, help_text="Videos sampled together; halved on CUDA out-of-memory."
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "generation batches"

    def __str__(self) -> str:
        return self.name


class GenerationJob(models.Model):
    """One video to make: unique on (batch, variant, prompt, seed)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    batch = models.ForeignKey(GenerationBatch, on_delete=models.CASCADE, related_name="jobs")
    variant = models.ForeignKey(ModelVariant, on_delete=models.PROTECT, related_name="jobs")
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="jobs")
    seed = models.IntegerField(help_text="The seed; for an imported video, its sample index.")
    source = models.CharField(
        max_length=1000, blank=True, help_text="Imported videos: the file it is transcoded from."
    )
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    worker = models.CharField(
        max_length=255, blank=True, help_text="Celery node that holds (or last held) the job."
    )
    sample_batch = models.PositiveIntegerField(
        null=True, blank=True, help_text="Videos sampled together when this one was made."
    )
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "variant", "prompt", "seed"]
        indexes = [models.Index(fields=["batch", "status"], name="job_batch_status")]
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "variant", "prompt", "seed"], name="job_unique_per_batch"
            )
        ]

    def __str__(self) -> str:
        return f"job {self.pk} ({self.status})"


class Video(models.Model):
    job = models.OneToOneField(GenerationJob, on_delete=models.CASCADE, related_name="video")
    file = models.FileField(upload_to=video_upload_path, max_length=300)
    poster = models.FileField(upload_to=poster_upload_path, max_length=300, blank=True)
    frames = models.PositiveIntegerField()
    fps = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    seconds_spent = models.FloatField(help_text="Model time for this video, in seconds.")
    scores = models.JSONField(
        default=dict, blank=True, help_text="Automatic metrics written by score_batch."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"video {self.pk}"
