"""Building a study: pick sources, variants and a pairing design, preview what it will take,
then publish it (comparisons and gold checks at once); pause, resume and close it.

The staff builder, `manage.py create_study`, the Django admin and the demo all come here, so a
study always gets its comparisons the same way.

A *source* is where a study's videos come from. Today that is a finished generation batch; two
variants' videos are paired on the same prompt text and seed whichever source each came from.
"""

from __future__ import annotations

import itertools
import secrets
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import TextChoices
from django.utils import timezone
from django.utils.text import slugify

from generation.models import GenerationBatch, ModelVariant, Video

from . import presentation
from .models import Comparison, Judgment, Study, VariantPair

# Used for the cost estimate until earlier studies have measured enough judgments.
DEFAULT_SECONDS_PER_JUDGMENT = 60.0
MIN_MEASURED_JUDGMENTS = 20


class Pairing(TextChoices):
    BASELINE = "baseline", "Each variant against one baseline (ablation style)"
    ALL = "all", "All pairs of the chosen variants"
    EXPLICIT = "explicit", "Explicit pairs"


@dataclass(frozen=True)
class StudyDesign:
    """Everything the builder asks for; nothing is written until `publish_study`."""

    name: str
    slug: str
    sources: tuple[GenerationBatch, ...]
    variants: tuple[ModelVariant, ...]
    pairing: str = Pairing.BASELINE
    baseline: ModelVariant | None = None
    explicit_pairs: tuple[tuple[ModelVariant, ModelVariant], ...] = ()
    raters_per_pair: int = 5
    mode: str = Study.Mode.FIXED
    allow_ties: bool = True
    gold_count: int = 8
    gold_rate: float = 0.1
    mirror_rate: float = 0.05
    require_qualification: bool = True
    min_watch_ms: int = 2000
    tasks_per_rater: int = 0
    external_id_param: str = "PROLIFIC_PID"
    completion_url: str = ""


# --- Sources ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceVideo:
    video_id: int
    variant_id: int
    prompt_id: int
    prompt_text: str
    seed: int


def source_videos(
    *, sources: Iterable[GenerationBatch], variants: Iterable[ModelVariant]
) -> list[SourceVideo]:
    """The finished videos of `variants` in `sources`, oldest first."""
    rows = (
        Video.objects.filter(job__batch__in=list(sources), job__variant__in=list(variants))
        .order_by("id")
        .values_list("id", "job__variant_id", "job__prompt_id", "job__prompt__text", "job__seed")
    )
    return [SourceVideo(*row) for row in rows]


@dataclass(frozen=True)
class Match:
    prompt_id: int
    video_a_id: int
    video_b_id: int


def match_videos(
    videos: Sequence[SourceVideo], pairs: Sequence[tuple[ModelVariant, ModelVariant]]
) -> list[list[Match]]:
    """Per pair, one match per (prompt text, seed) both variants have a video of.

    Sources may hold the same prompt in different prompt sets: the text decides, and every
    comparison of that text points at one prompt row (the oldest), so "one prompt per rater"
    still holds. A variant with two videos of the same prompt and seed contributes its oldest.
    """
    canonical: dict[str, int] = {}
    by_key: dict[tuple[int, str, int], int] = {}
    for video in videos:
        text = video.prompt_text.strip()
        canonical[text] = min(canonical.get(text, video.prompt_id), video.prompt_id)
        by_key.setdefault((video.variant_id, text, video.seed), video.video_id)
    keys = sorted({(text, seed) for _variant, text, seed in by_key})
    matched = []
    for variant_a, variant_b in pairs:
        rows = []
        for text, seed in keys:
            a = by_key.get((variant_a.pk, text, seed))
            b = by_key.get((variant_b.pk, text, seed))
            if a is not None and b is not None:
                rows.append(Match(canonical[text], a, b))
        matched.append(rows)
    return matched


# --- Design checks and the preview -----------------------------------------------------------


def design_pairs(design: StudyDesign) -> list[tuple[ModelVariant, ModelVariant]]:
    """Variant pairs in table order: A is the design under test, B what it is compared with."""
    if design.pairing == Pairing.BASELINE:
        baseline = design.baseline
        return [(v, baseline) for v in design.variants if baseline and v.pk != baseline.pk]
    if design.pairing == Pairing.ALL:
        return list(itertools.combinations(design.variants, 2))
    return list(design.explicit_pairs)


def check_design(design: StudyDesign) -> list[list[Match]]:
    """Every refusal at once, by field; returns the matched videos per pair when it is fine."""
    errors: dict[str, list[str]] = {}

    def refuse(key: str, message: str) -> None:
        errors.setdefault(key, []).append(message)

    if not design.name.strip():
        refuse("name", "Give the study a name.")
    if not design.slug or slugify(design.slug) != design.slug:
        refuse("slug", "Use lower-case letters, digits and hyphens only.")
    elif Study.objects.filter(slug=design.slug).exists():
        refuse("slug", f"The slug '{design.slug}' is already taken by another study.")
    if not design.sources:
        refuse("sources", "Pick at least one source batch.")
    if design.raters_per_pair < 1:
        refuse("raters_per_pair", "Raters per pair must be at least 1.")
    if design.mode not in Study.Mode.values:
        refuse("mode", f"Mode must be one of: {', '.join(Study.Mode.values)}.")
    for key, rate in (("gold_rate", design.gold_rate), ("mirror_rate", design.mirror_rate)):
        if not 0 <= rate < 1:
            refuse(key, "Give a share from 0 up to (not including) 1.")
    if design.gold_rate + design.mirror_rate >= 1:
        refuse("mirror_rate", "Gold and mirror shares together must leave room for real tasks.")
    if design.gold_count < 0:
        refuse("gold_count", "The number of gold comparisons cannot be negative.")
    if design.gold_rate > 0 and design.gold_count == 0:
        refuse("gold_count", "A gold rate needs gold comparisons to hand out: build at least 1.")
    if design.min_watch_ms < 0 or design.tasks_per_rater < 0:
        refuse("min_watch_ms", "Times and task counts cannot be negative.")
    if design.pairing not in Pairing.values:
        refuse("pairing", f"Pairing must be one of: {', '.join(Pairing.values)}.")
    elif design.pairing == Pairing.BASELINE:
        if design.baseline is None:
            refuse("baseline", "Pick the baseline every variant is compared with.")
        elif design.baseline.pk not in {v.pk for v in design.variants}:
            refuse("baseline", "The baseline must be one of the chosen variants.")
    elif design.pairing == Pairing.EXPLICIT and not design.explicit_pairs:
        refuse("explicit_pairs", "List at least one pair.")
    pairs = design_pairs(design)
    if design.pairing != Pairing.EXPLICIT and len(design.variants) < 2:
        refuse("variants", "Pick at least two variants.")
    if any(a.pk == b.pk for a, b in pairs):
        refuse("explicit_pairs", "A pair needs two different variants.")
    if len({(a.pk, b.pk) for a, b in pairs}) != len(pairs):
        refuse("explicit_pairs", "A pair is listed twice.")
    if errors:
        raise ValidationError(errors)

    used = {v.pk: v for pair in pairs for v in pair}
    videos = source_videos(sources=design.sources, variants=used.values())
    have = {video.variant_id for video in videos}
    for variant in used.values():
        if variant.pk not in have:
            refuse("variants", f"'{variant}' has no finished videos in the chosen sources.")
    matched = match_videos(videos, pairs)
    for (a, b), rows in zip(pairs, matched, strict=True):
        if not rows and a.pk in have and b.pk in have:
            refuse("variants", f"'{a}' and '{b}' have no prompt and seed in common.")
    if errors:
        raise ValidationError(errors)
    return matched


@dataclass(frozen=True)
class PairPlan:
    variant_a: ModelVariant
    variant_b: ModelVariant
    comparisons: int


@dataclass(frozen=True)
class SamplePair:
    prompt: str
    video_a: Video
    video_b: Video
    variant_a: ModelVariant
    variant_b: ModelVariant


@dataclass(frozen=True)
class StudyPlan:
    design: StudyDesign
    pairs: tuple[PairPlan, ...]
    prompts: int
    comparisons: int
    rated_judgments: int  # k × comparisons
    check_tasks: int  # gold and mirrored repeats on top, at the study's rates
    seconds_per_judgment: float
    seconds_measured_from: int  # judgments the median came from; 0: the stated default
    pay_per_hour: float | None
    sample: SamplePair | None = field(default=None)

    @property
    def judgments(self) -> int:
        return self.rated_judgments + self.check_tasks

    @property
    def rater_hours(self) -> float:
        return self.judgments * self.seconds_per_judgment / 3600

    @property
    def cost(self) -> float | None:
        return None if self.pay_per_hour is None else self.rater_hours * self.pay_per_hour


def seconds_per_judgment() -> tuple[float, int]:
    """The median time raters took per judgment in earlier studies (simulated ones left out),
    and how many judgments that is; the stated default until there are enough."""
    spent = list(
        Judgment.objects.filter(is_simulated=False, time_spent_ms__gt=0)
        .order_by("-id")
        .values_list("time_spent_ms", flat=True)[:5000]
    )
    if len(spent) < MIN_MEASURED_JUDGMENTS:
        return DEFAULT_SECONDS_PER_JUDGMENT, 0
    return statistics.median(spent) / 1000, len(spent)


def check_tasks(*, rated: int, gold_rate: float, mirror_rate: float) -> int:
    """Checks handed out on top of `rated` real tasks: each is that share of all tasks."""
    real_share = 1 - gold_rate - mirror_rate
    return round(rated / real_share) - rated if real_share > 0 else 0


def plan_study(*, design: StudyDesign, pay_per_hour: float | None = None) -> StudyPlan:
    """What publishing `design` would make and take; raises ValidationError like publishing."""
    if pay_per_hour is not None and pay_per_hour < 0:
        raise ValidationError({"pay_per_hour": "The pay rate cannot be negative."})
    matched = check_design(design)
    pairs = design_pairs(design)
    comparisons = sum(len(rows) for rows in matched)
    rated = comparisons * design.raters_per_pair
    seconds, measured = seconds_per_judgment()
    first = next(((pair, rows[0]) for pair, rows in zip(pairs, matched, strict=True) if rows))
    (variant_a, variant_b), match = first
    videos = Video.objects.select_related("job__prompt").in_bulk(
        [match.video_a_id, match.video_b_id]
    )
    sample = SamplePair(
        prompt=videos[match.video_a_id].job.prompt.text,
        video_a=videos[match.video_a_id],
        video_b=videos[match.video_b_id],
        variant_a=variant_a,
        variant_b=variant_b,
    )
    return StudyPlan(
        design=design,
        pairs=tuple(PairPlan(a, b, len(rows)) for (a, b), rows in zip(pairs, matched, strict=True)),
        prompts=len({m.prompt_id for rows in matched for m in rows}),
        comparisons=comparisons,
        rated_judgments=rated,
        check_tasks=check_tasks(
            rated=rated, gold_rate=design.gold_rate, mirror_rate=design.mirror_rate
        ),
        seconds_per_judgment=seconds,
        seconds_measured_from=measured,
        pay_per_hour=pay_per_hour,
        sample=sample,
    )


# --- Writes ----------------------------------------------------------------------------------


def publish_study(*, design: StudyDesign) -> Study:
    """Create the study, its pairs, its comparisons and its gold checks; all or nothing."""
    check_design(design)
    try:
        with transaction.atomic():
            return create_study(
                name=design.name.strip(),
                slug=design.slug,
                sources=design.sources,
                pairs=design_pairs(design),
                raters_per_pair=design.raters_per_pair,
                allow_ties=design.allow_ties,
                mode=design.mode,
                tasks_per_rater=design.tasks_per_rater,
                require_qualification=design.require_qualification,
                gold_rate=design.gold_rate,
                mirror_rate=design.mirror_rate,
                min_watch_ms=design.min_watch_ms,
                gold_comparisons=design.gold_count,
                external_id_param=design.external_id_param or "PROLIFIC_PID",
                completion_url=design.completion_url,
            )
    except IntegrityError as exc:  # another admin took the slug a moment ago
        raise ValidationError({"slug": f"The slug '{design.slug}' is already taken."}) from exc


@transaction.atomic
def create_study(
    *,
    name: str,
    slug: str,
    sources: Sequence[GenerationBatch],
    pairs: Sequence[tuple[ModelVariant, ModelVariant]],
    gold_comparisons: int = 0,
    **options: Any,
) -> Study:
    """A study with one comparison per (pair, prompt, seed) whose two videos both exist in
    `sources`, plus `gold_comparisons` hidden gold ones degraded from them."""
    from . import gold_checks

    if options.get("raters_per_pair", 5) < 1:
        raise ValidationError("raters_per_pair must be at least 1.")
    if not 0 <= options.get("gold_rate", 0.1) < 1 or not 0 <= options.get("mirror_rate", 0) < 1:
        raise ValidationError("gold_rate and mirror_rate must be in [0, 1).")
    study = Study.objects.create(
        name=name,
        slug=slug,
        completion_code=_new_code(),
        screenout_code=_new_code(),
        **options,
    )
    study.batches.set(sources)
    for variant_a, variant_b in pairs:
        pair = VariantPair.objects.create(study=study, variant_a=variant_a, variant_b=variant_b)
        add_comparisons(pair=pair)
    if gold_comparisons:
        gold_checks.build_gold_comparisons(study=study, count=gold_comparisons)
    return study


def _new_code() -> str:
    """A completion or screen-out code for a crowd platform."""
    return secrets.token_hex(4).upper()


def add_comparisons(*, pair: VariantPair) -> int:
    """Match the pair's videos across the study's sources; skip comparisons already there."""
    study = pair.study
    videos = source_videos(sources=study.batches.all(), variants=[pair.variant_a, pair.variant_b])
    (matches,) = match_videos(videos, [(pair.variant_a, pair.variant_b)])
    existing = set(
        pair.comparisons.filter(kind=Comparison.Kind.REAL).values_list("video_a_id", "video_b_id")
    )
    fraction = study.calibration_fraction
    step = max(1, round(1 / fraction)) if fraction > 0 else 0
    start = pair.comparisons.filter(kind=Comparison.Kind.REAL).count()
    new = [
        Comparison(
            study=study,
            pair=pair,
            prompt_id=m.prompt_id,
            video_a_id=m.video_a_id,
            video_b_id=m.video_b_id,
        )
        for m in matches
        if (m.video_a_id, m.video_b_id) not in existing
    ]
    for index, comparison in enumerate(new, start=start):
        comparison.is_calibration = bool(step) and index % step == 0
    Comparison.objects.bulk_create(new)
    presentation.present_comparisons(comparisons=new)
    return len(new)


def rebuild_comparisons(*, study: Study) -> int:
    """Add whatever the study's pairs now match in its sources (after the admin edits them)."""
    return sum(add_comparisons(pair=pair) for pair in study.pairs.select_related("study"))


# --- Pause, resume, close --------------------------------------------------------------------


def pause_study(*, study: Study) -> Study:
    """No new tasks; tasks already claimed may be submitted for the grace window."""
    if study.closed_at is not None:
        raise ValidationError("This study is closed.")
    if study.is_active:
        study.is_active = False
        study.deactivated_at = timezone.now()
        study.save(update_fields=["is_active", "deactivated_at"])
    return study


def resume_study(*, study: Study) -> Study:
    if study.closed_at is not None:
        raise ValidationError("A closed study cannot be resumed.")
    if not study.is_active:
        study.is_active = True
        study.deactivated_at = None
        study.save(update_fields=["is_active", "deactivated_at"])
    return study


def close_study(*, study: Study) -> Study:
    """For good: no new tasks, in-flight ones get the grace window, no resume."""
    if study.closed_at is not None:
        return study
    now = timezone.now()
    study.closed_at = now
    if study.is_active:
        study.is_active = False
        study.deactivated_at = now
    study.save(update_fields=["is_active", "deactivated_at", "closed_at"])
    return study


def sources_with_videos(*, variants: Iterable[ModelVariant]) -> list[GenerationBatch]:
    """Every batch holding a finished video of any of `variants`, oldest first."""
    return list(
        GenerationBatch.objects.filter(jobs__video__isnull=False, jobs__variant__in=list(variants))
        .distinct()
        .order_by("created_at", "pk")
    )


def design_from_names(
    *,
    slug: str,
    variant_slugs: Sequence[str],
    baseline: str = "",
    pairs: Sequence[str] = (),
    source_ids: Sequence[str] = (),
    name: str = "",
    **settings: Any,
) -> StudyDesign:
    """A design from what a script types: variant slugs (newest version of each), the
    baseline's slug or explicit 'a:b' pairs (neither: all pairs), and batch ids (none: every
    batch with videos of the variants). Unknown names raise LookupError, saying which."""
    from generation.selectors import latest_variants

    variants = latest_variants(slugs=list(variant_slugs))
    by_slug = {v.slug: v for v in variants}
    named = [_named_pair(text) for text in pairs]
    for each in [baseline, *(s for pair in named for s in pair)]:
        if each and each not in by_slug:
            raise LookupError(f"{each!r} is not one of the chosen variants.")
    if not all(part.isdigit() for part in source_ids):
        raise LookupError(f"Sources are batch ids (numbers), not {', '.join(source_ids)!r}.")
    found = GenerationBatch.objects.in_bulk([int(part) for part in source_ids])
    missing = [part for part in source_ids if int(part) not in found]
    if missing:
        raise LookupError(f"No generation batch with id {', '.join(missing)}.")
    sources = [found[int(part)] for part in source_ids] or sources_with_videos(variants=variants)
    pairing = Pairing.EXPLICIT if named else Pairing.BASELINE if baseline else Pairing.ALL
    return StudyDesign(
        name=name or slug,
        slug=slug,
        sources=tuple(sources),
        variants=tuple(variants),
        pairing=pairing,
        baseline=by_slug.get(baseline),
        explicit_pairs=tuple((by_slug[a], by_slug[b]) for a, b in named),
        **settings,
    )


def _named_pair(text: str) -> tuple[str, str]:
    a, colon, b = text.partition(":")
    if not colon or not a or not b:
        raise LookupError(f"Pairs are written a:b, not {text!r}.")
    return a, b
