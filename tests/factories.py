"""factory_boy factories: the one place tests build rows."""

from __future__ import annotations

import factory
import numpy as np
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile

from generation.models import GenerationBatch, GenerationJob, ModelVariant, Prompt, PromptSet, Video
from raters.models import Assignment, Comparison, Judgment, Study, VariantPair


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"rater{n}")
    password = factory.django.Password("pw-for-tests")


class StaffFactory(UserFactory):
    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True
    is_superuser = True


class ModelVariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVariant

    name = factory.Sequence(lambda n: f"Variant {n}")
    slug = factory.Sequence(lambda n: f"variant-{n}")
    config = factory.LazyFunction(
        lambda: {"mode": "factorized", "schedule": "zero_snr", "steps": 2}
    )


class PromptSetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PromptSet

    name = factory.Sequence(lambda n: f"Prompts {n}")
    slug = factory.Sequence(lambda n: f"prompts-{n}")


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    prompt_set = factory.SubFactory(PromptSetFactory)
    external_id = factory.Sequence(lambda n: str(n))
    text = factory.Sequence(lambda n: f"a red circle moves left, take {n}")


class GenerationBatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GenerationBatch

    name = factory.Sequence(lambda n: f"batch {n}")
    prompt_set = factory.SubFactory(PromptSetFactory)


class GenerationJobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GenerationJob

    batch = factory.SubFactory(GenerationBatchFactory)
    variant = factory.SubFactory(ModelVariantFactory)
    prompt = factory.SubFactory(
        PromptFactory, prompt_set=factory.SelfAttribute("..batch.prompt_set")
    )
    seed = 0
    status = GenerationJob.Status.DONE


def tiny_mp4_bytes(seed: int = 0) -> bytes:
    """A real 8-frame H.264 MP4, so browser tests decode something."""
    import tempfile
    from pathlib import Path

    from generation.video.export import write_mp4

    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, size=(8, 16, 16, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.mp4"
        write_mp4(frames, path, fps=4)
        return path.read_bytes()


class VideoFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Video

    job = factory.SubFactory(GenerationJobFactory)
    file = factory.LazyAttribute(lambda o: ContentFile(tiny_mp4_bytes(), name="video.mp4"))
    poster = factory.LazyAttribute(lambda o: ContentFile(b"\x89PNG\r\n\x1a\n", name="poster.png"))
    frames = 8
    fps = 4
    width = 16
    height = 16
    seconds_spent = 0.1


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Study {n}")
    slug = factory.Sequence(lambda n: f"study-{n}")
    raters_per_pair = 5

    @factory.post_generation
    def batches(self, create: bool, extracted: list[GenerationBatch] | None, **kwargs: object):  # type: ignore[no-untyped-def]
        """One source batch of its own unless `batches=[...]` is given."""
        if create:
            self.batches.set(extracted if extracted is not None else [GenerationBatchFactory()])


class VariantPairFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VariantPair

    study = factory.SubFactory(StudyFactory)
    variant_a = factory.SubFactory(ModelVariantFactory)
    variant_b = factory.SubFactory(ModelVariantFactory)


def make_comparison(*, pair: VariantPair | None = None, prompt: Prompt | None = None) -> Comparison:
    """A comparison whose two videos really come from the pair's variants in its study's batch."""
    pair = pair or VariantPairFactory()
    batch = pair.study.batches.get()
    prompt = prompt or PromptFactory(prompt_set=batch.prompt_set)
    video_a = VideoFactory(job__batch=batch, job__variant=pair.variant_a, job__prompt=prompt)
    video_b = VideoFactory(job__batch=batch, job__variant=pair.variant_b, job__prompt=prompt)
    return Comparison.objects.create(
        study=pair.study, pair=pair, prompt=prompt, video_a=video_a, video_b=video_b
    )


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Assignment

    comparison = factory.LazyFunction(make_comparison)
    rater = factory.SubFactory(UserFactory)
    left_is_a = True


class JudgmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Judgment

    assignment = factory.SubFactory(AssignmentFactory, status=Assignment.Status.DONE)
    quality = "a"
    quality_reasons = factory.LazyFunction(lambda: ["pixel_sharpness"])
    faithfulness = "b"
    faithfulness_reasons = factory.LazyFunction(lambda: ["spatial_alignment"])
