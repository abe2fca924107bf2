"""Reads for rating: what a rater sees (never a variant), progress, QC statistics."""

from __future__ import annotations

import functools
import hashlib
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.db.models.fields.files import FieldFile
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.crypto import salted_hmac

from . import hot_path, quiz
from .auth import confirm
from .models import Assignment, Comparison, Judgment, Rater, Study


def active_studies() -> QuerySet[Study]:
    return Study.objects.filter(is_active=True).order_by("created_at")


T = TypeVar("T")


def _reused(store: dict[Any, tuple[float, Any]], key: Any, ttl: float, read: Callable[[], T]) -> T:
    """`read()`, kept in this process's `store` for `ttl` seconds (0: always read afresh).
    Nothing is kept for None, so a missing row is looked up again next time."""
    now = time.monotonic()
    hit = store.get(key) if ttl > 0 else None
    if hit is not None and now < hit[0]:
        return hit[1]  # type: ignore[no-any-return]
    value = read()
    if value is not None and ttl > 0:
        store[key] = (now + ttl, value)
    return value


_studies: dict[Any, tuple[float, Any]] = {}


def study_for_rating(**lookup: Any) -> Study | None:
    """The study matching `lookup` (slug=..., is_active=True or pk=...), reused by this process
    for JUICE_STUDY_CACHE_SECONDS: every rating request reads it, and edits to a study may
    take that long to reach raters. The instance is shared: read it, never change it."""
    return _reused(
        _studies,
        tuple(sorted(lookup.items())),
        settings.JUICE_STUDY_CACHE_SECONDS,
        lambda: Study.objects.filter(**lookup).first(),
    )


def assignment_for_submit(*, token: str, rater: Any) -> Assignment | None:
    """The rater's own assignment by its token, with what recording a judgment reads: its
    comparison (kind, gold question, mirror source), study, rater with profile and judgment if
    any, and the rater's state in the study for the answer's progress (`submit_state`). One
    statement (two for a repeated submit); another rater's token finds nothing."""
    found = hot_path.assignment_for_submit(token=token, rater_id=rater.pk)
    if found is None:
        confirm(rater, None)  # a session that may not sign in is refused, not told "no task"
        return None
    assignment, comparison, judgment_id, user, state_row = found
    # The user came with the task: a session's user is confirmed with it (raters.auth).
    rater = confirm(rater, user)
    study = study_for_rating(pk=comparison.study_id)
    if study is None:  # deleted a moment ago
        return None
    comparison.study = study
    assignment.comparison = comparison
    assignment.rater = rater
    # Filled in as select_related("judgment") would: `assignment.judgment` needs no query to
    # tell whether one exists (and raises DoesNotExist when none does).
    judgment = Judgment.objects.get(pk=judgment_id) if judgment_id is not None else None
    Assignment.judgment.related.set_cached_value(assignment, judgment)
    setattr(assignment, _SUBMIT_STATE, _state_from_row(state_row))
    return assignment


# Where an assignment from assignment_for_submit keeps the rater's state read with it.
_SUBMIT_STATE = "_rater_state"


def submit_state(assignment: Assignment) -> RaterState | None:
    """The rater's state in the study as of `assignment`'s submit (see `note_submitted`), if it
    came with the assignment and is still true; None: read it afresh."""
    state: RaterState | None = getattr(assignment, _SUBMIT_STATE, None)
    return state


def note_submitted(assignment: Assignment, *, flipped: bool) -> None:
    """Keep the state read with `assignment` true once its judgment is recorded: `flipped`
    (the task went from open to done) counts one open task done; any other way to done (an
    expired task taken back) drops the state, so progress reads it afresh."""
    state = submit_state(assignment)
    if state is not None:
        setattr(assignment, _SUBMIT_STATE, state.with_done(assignment.pk) if flipped else None)


def assignment_for_clip(*, token: str, rater: Any) -> Assignment | None:
    """The rater's own assignment by its opaque token, with the clips its clip requests read
    (`clip_file`), in one statement; another rater's token finds nothing. Four of a task's
    six requests are clips: through the ORM this lookup cost 2.2-2.8 ms of CPU here, written
    out 0.3-0.4 ms."""
    return hot_path.assignment_for_clip(token=token, rater_id=rater.pk)


@dataclass(frozen=True)
class RaterState:
    """A rater's assignments in one study, counted in one statement: what assignment and
    progress decide on (the open task, checks taken, what has been seen)."""

    active: int | None  # the oldest open assignment's id
    open: int
    taken_by_kind: dict[str, int]
    done: int
    seen_real: int
    seen_prompts: int  # distinct prompts among the real comparisons seen

    @property
    def taken(self) -> int:
        return sum(self.taken_by_kind.values())

    def with_new(self, assignment: Assignment) -> RaterState:
        """The state once `assignment` (just created, active) is counted."""
        comparison = assignment.comparison
        real = comparison.kind == Comparison.Kind.REAL
        taken = dict(self.taken_by_kind)
        taken[comparison.kind] = taken.get(comparison.kind, 0) + 1
        return RaterState(
            active=self.active if self.active is not None else assignment.pk,
            open=self.open + 1,
            taken_by_kind=taken,
            done=self.done,
            seen_real=self.seen_real + int(real),
            # A real task's prompt is new to the rater unless the study allows repeats.
            seen_prompts=self.seen_prompts + int(real),
        )

    def with_done(self, assignment_id: int) -> RaterState:
        """The state once the open task `assignment_id` is done. `active` stays only if it was
        another task (which open task is then oldest is not known here; progress reads none)."""
        return RaterState(
            active=self.active if self.active != assignment_id else None,
            open=self.open - 1,
            taken_by_kind=self.taken_by_kind,
            done=self.done + 1,
            seen_real=self.seen_real,
            seen_prompts=self.seen_prompts,
        )


def rater_state(*, study: Study, rater: Any) -> RaterState:
    """One row however many tasks the rater did (hot_path.rater_state_row: it runs on every
    rating request)."""
    return _state_from_row(hot_path.rater_state_row(study_id=study.pk, rater_id=rater.pk))


def _state_from_row(row: tuple[Any, ...]) -> RaterState:
    active, open_now, done, seen_real, seen_prompts, *taken = row
    return RaterState(
        active=active,
        open=open_now or 0,
        taken_by_kind={kind: n for kind, n in zip(hot_path.STATE_KINDS, taken, strict=True) if n},
        done=done or 0,
        seen_real=seen_real or 0,
        seen_prompts=seen_prompts or 0,
    )


def real_candidates(*, study: Study, rater: Any) -> QuerySet[Comparison]:
    """Real comparisons this rater may still get: room left, unseen, prompt new to them."""
    candidates = Comparison.objects.filter(
        study=study,
        kind=Comparison.Kind.REAL,
        assigned_count__lt=study.raters_per_pair,
        is_ready=True,
    ).exclude(pk__in=Assignment.objects.filter(rater_id=rater.pk).values("comparison_id"))
    if not study.allow_repeat_prompts:
        seen_prompts = Assignment.objects.filter(
            rater_id=rater.pk, comparison__study=study, comparison__kind=Comparison.Kind.REAL
        ).values("comparison__prompt_id")
        candidates = candidates.exclude(prompt_id__in=seen_prompts)
    if study.mode == Study.Mode.ADAPTIVE and adaptive_converged(study=study):
        candidates = candidates.filter(is_calibration=True)
    return candidates


@dataclass(frozen=True)
class MirrorSource:
    """A real task the rater judged, to be repeated with the sides swapped."""

    left_is_a: bool
    comparison_id: int
    pair_id: int
    prompt_id: int
    video_a_id: int
    video_b_id: int
    shown_a_id: int | None
    shown_b_id: int | None
    mirror_id: int | None  # the mirror comparison, if another rater's repeat made it


def mirror_source(*, study: Study, rater: Any) -> MirrorSource | None:
    """A real task the rater finished at least two tasks ago and has not seen mirrored, at
    random; one statement (hot_path.mirror_source_row), like the claim of a real task."""
    row = hot_path.mirror_source_row(study_id=study.pk, rater_id=rater.pk)
    return MirrorSource(*row) if row is not None else None


def rater_finished(*, study: Study, rater: Any) -> bool:
    """Nothing open and nothing more to give this rater."""
    state = rater_state(study=study, rater=rater)
    if state.active is not None:
        return False
    if study.tasks_per_rater and state.taken >= study.tasks_per_rater:
        return True
    return not real_candidates(study=study, rater=rater).exists()


def quiz_paper(*, rater: Rater) -> tuple[quiz.PaperQuestion, ...]:
    """The quiz this rater's next attempt shows (and is graded against): its own draw of
    variants and option order, the same on a reload, new after each attempt."""
    seed = salted_hmac("raters.quiz", f"{rater.user_id}:{rater.quiz_attempts}").digest()
    return quiz.paper(seed)


def rater_profile_or_blank(*, user: Any) -> Rater:
    """The user's rater profile, or an unsaved blank one (not qualified, no quiz taken) for a
    user who has none yet: what pages shown on a GET read, creating nothing."""
    try:
        profile: Rater = user.rater  # loaded with the user by raters.auth, or one query
    except Rater.DoesNotExist:
        return Rater(user=user)
    return profile


@dataclass(frozen=True)
class CrowdCode:
    """A code the crowd platform pays on: 'completion' for work done, 'screenout' for a
    worker who took the qualification quiz and failed it."""

    kind: str
    code: str


def crowd_code(*, study: Study, rater: Any) -> CrowdCode | None:
    """The one code this rater has earned in this study, or None: every route that shows a
    code (finish page, screen-out page, API) asks here.

    The completion code needs real work: the study's quota done, or every task the rater
    could get with at least `min_tasks_for_code` real ones among them. A rater stopped by
    quality control gets no code; the screen-out code needs a failed quiz.
    """
    profile = Rater.objects.filter(user_id=rater.pk).first()
    if profile is None or profile.is_flagged:
        return None
    if study.require_qualification and not profile.is_qualified:
        failed = profile.quiz_attempts >= quiz.MAX_ATTEMPTS
        if failed and study.screenout_code:
            return CrowdCode("screenout", study.screenout_code)
        return None
    if not study.completion_code:
        return None
    state = rater_state(study=study, rater=rater)
    if state.active is not None:
        return None
    earned = CrowdCode("completion", study.completion_code)
    if study.tasks_per_rater and state.done >= study.tasks_per_rater:
        return earned
    real_done = Assignment.objects.filter(
        rater_id=rater.pk,
        comparison__study=study,
        comparison__kind=Comparison.Kind.REAL,
        status=Assignment.Status.DONE,
    ).count()
    if real_done < max(1, study.min_tasks_for_code):
        return None
    return earned if rater_finished(study=study, rater=rater) else None


@dataclass(frozen=True)
class StudyRoom:
    prompts: int  # distinct prompts of real comparisons
    prompts_open: int  # ... of those with a slot left
    comparisons: int
    comparisons_open: int
    golds: int = 0  # gold comparisons: a rater can get each once


_rooms: dict[Any, tuple[float, Any]] = {}


def study_room(*, study: Study) -> StudyRoom:
    """How much of the study is left, shared by all raters and reused by this process for a
    few seconds (JUICE_PROGRESS_CACHE_SECONDS): progress needs an estimate, not a count per
    request, nor a trip to a shared cache."""

    def count() -> StudyRoom:
        real = Q(kind=Comparison.Kind.REAL)
        room = real & Q(assigned_count__lt=study.raters_per_pair)
        counts = Comparison.objects.filter(
            study=study, kind__in=[Comparison.Kind.REAL, Comparison.Kind.GOLD]
        ).aggregate(
            prompts=Count("prompt_id", distinct=True, filter=real),
            prompts_open=Count("prompt_id", distinct=True, filter=room),
            comparisons=Count("id", filter=real),
            comparisons_open=Count("id", filter=room),
            golds=Count("id", filter=Q(kind=Comparison.Kind.GOLD)),
        )
        return StudyRoom(
            counts["prompts"],
            counts["prompts_open"],
            counts["comparisons"],
            counts["comparisons_open"],
            counts["golds"],
        )

    return _reused(_rooms, study_identity(study), settings.JUICE_PROGRESS_CACHE_SECONDS, count)


def study_identity(study: Study) -> str:
    """A key for per-study caches that a later study reusing the same id cannot hit."""
    return f"{study.pk}:{study.created_at.timestamp() if study.created_at else 0}"


def check_due(*, study: Study, rater_id: int, kind: str, done: int, total: int) -> bool:
    """Whether the rater's next task (after `total` taken, `done` of them of this check kind)
    should be a check of `kind` ('gold' or 'mirror').

    Checks are spread evenly, the n-th near task n / rate, but rounded at a random point per
    rater and task, so the count stays within one of the rate while a check's position in a
    rater's run says nothing (at fixed positions, "tasks 2, 5, 8" would).
    """
    rate = study.gold_rate if kind == Comparison.Kind.GOLD else study.mirror_rate
    if rate <= 0:
        return False
    return done < math.floor((total + 1) * rate + _jitter(study.pk, rater_id, kind, total))


def _jitter(study_id: int, rater_id: int, kind: str, total: int) -> float:
    """A number in [0, 1) per study, rater, kind and task index, unpredictable without the
    site's secret."""
    digest = hashlib.blake2b(
        f"{study_id}:{rater_id}:{kind}:{total}".encode(),
        key=settings.SECRET_KEY.encode()[:64],
        digest_size=8,
    ).digest()
    return int.from_bytes(digest, "big") / 2**64


@functools.lru_cache(maxsize=4096)
def _planned_tasks(
    study_id: int, rates: tuple[float, float], rater_id: int, real_work: int, golds: int
) -> int:
    """How many tasks a run with `real_work` real tasks takes, deciding each task as
    assignments._new_assignment does (same check_due draws, gold while any is left, a mirror
    once a real task two or more back has none)."""
    study = Study(pk=study_id, gold_rate=rates[0], mirror_rate=rates[1])
    kinds: list[str] = []
    taken: dict[str, int] = {Comparison.Kind.GOLD: 0, Comparison.Kind.MIRROR: 0}
    real = 0
    while real < real_work:
        total = len(kinds)
        kind: str = Comparison.Kind.REAL
        for check in (Comparison.Kind.GOLD, Comparison.Kind.MIRROR):
            if not check_due(
                study=study, rater_id=rater_id, kind=check, done=taken[check], total=total
            ):
                continue
            if check == Comparison.Kind.GOLD and taken[check] < golds:
                kind = check
                break
            if check == Comparison.Kind.MIRROR:
                originals = kinds[:-2].count(Comparison.Kind.REAL) if total >= 2 else 0
                if originals > taken[check]:
                    kind = check
                    break
        kinds.append(kind)
        if kind == Comparison.Kind.REAL:
            real += 1
        else:
            taken[kind] += 1
    return len(kinds)


def real_work_left(*, study: Study, state: RaterState, room: StudyRoom) -> int:
    """About how many more real tasks this rater can get: bounded by both what the study still
    has room for and what this rater has not seen yet (an estimate: `room` may be seconds old)."""
    if study.allow_repeat_prompts:
        left = min(room.comparisons_open, room.comparisons - state.seen_real)
    else:
        left = min(room.prompts_open, room.prompts - state.seen_prompts)
    return max(0, left)


def rater_progress(
    *,
    study: Study,
    rater: Any,
    state: RaterState | None = None,
    room: StudyRoom | None = None,
) -> dict[str, int]:
    """Tasks done and an honest estimate of the total for this rater ("12 of 40").

    What is left is bounded by both what the study still has room for and what this rater has
    not seen yet; checks (gold, mirrors) are added at the study's rates. Within one rater's
    run the total moves only when other raters take the last slots of a prompt, never because
    the task served is a check.
    """
    if state is None:
        state = rater_state(study=study, rater=rater)
    done, open_now = state.done, state.open
    if study.tasks_per_rater:
        return {"done": done, "total": max(study.tasks_per_rater, done + open_now)}
    room = room or study_room(study=study)
    remaining = real_work_left(study=study, state=state, room=room)
    # Real work seen plus real work left, with the checks that run will get: a gold or
    # mirrored task takes no real slot, so it leaves the total where it was (a total that
    # rose on checks alone would point them out).
    planned = _planned_tasks(
        study.pk,
        (study.gold_rate, study.mirror_rate),
        rater.pk,
        state.seen_real + remaining,
        room.golds,
    )
    return {"done": done, "total": max(planned, done + open_now)}


def clip_file(*, assignment: Assignment, side: str, kind: str) -> FieldFile | None:
    """The file behind 'left'/'right' of an assignment; gold B sides come from the degraded clip."""
    comparison = assignment.comparison
    is_a = (side == "left") == assignment.left_is_a
    if not is_a and comparison.gold_clip_id is not None:
        source: Any = comparison.gold_clip
    elif comparison.shown_a_id is not None:  # both clips in the pair's one presentation
        source = comparison.shown_a if is_a else comparison.shown_b
    else:
        source = comparison.video_a if is_a else comparison.video_b
    field = source.file if kind == "video" else source.poster
    return field or None


_NO_TOKEN = str(uuid.UUID(int=0))


@functools.lru_cache(maxsize=16)
def _clip_url_base(urlconf: str, script_prefix: str) -> str:
    """A clip URL up to its side, with `_NO_TOKEN` for the token: reverse() costs more than
    the rest of a task's page data, and the URL only changes with the URLconf and prefix."""
    return reverse("raters:clip", args=[_NO_TOKEN, "s", "k"]).removesuffix("s/k")


def task_payload(
    *,
    assignment_id: int,
    study: Study,
    progress: dict[str, int],
    row: tuple[Any, ...] | None = None,
) -> dict[str, Any]:
    """What the page and the API show a rater: prompt, opaque clip URLs, nothing about variants.

    From `row` (hot_path.payload_row's answer, as a new task's insert returns it), else one
    statement: it runs on every task handed out.
    """
    row = row or hot_path.payload_row(assignment_id)
    if row is None:
        raise Assignment.DoesNotExist(assignment_id)
    token, left_is_a, gold_clip_id, prompt, fps_a, fps_b, poster_a, poster_b, gold_poster = row
    # Same rule as clip_file: a gold comparison's B side is its degraded clip.
    poster_b = gold_poster if gold_clip_id is not None else poster_b
    posters = {
        "left": poster_a if left_is_a else poster_b,
        "right": poster_b if left_is_a else poster_a,
    }

    # The four clip URLs differ only in the token and their last two parts.
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    base = _clip_url_base(urlconf, get_script_prefix()).replace(_NO_TOKEN, token)

    def side(name: str) -> dict[str, str]:
        return {
            "video": f"{base}{name}/video",
            "poster": f"{base}{name}/poster" if posters[name] else "",
        }

    return {
        "token": token,
        "prompt": prompt,
        "left": side("left"),
        "right": side("right"),
        "progress": progress,
        "allow_ties": study.allow_ties,
        # One clock for both: the pair is shown at the smaller frame rate (docs/protocol.md).
        "fps": min(fps_a, fps_b),
        "min_watch_ms": study.min_watch_ms,
        "break_every": study.break_every,
    }


@dataclass(frozen=True)
class GoldStats:
    correct: int
    total: int
    missed: tuple[int, ...]

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 1.0


def gold_stats(*, study: Study | None, user: Any) -> GoldStats:
    judged = Judgment.objects.filter(assignment__rater=user, gold_correct__isnull=False)
    if study is not None:
        judged = judged.filter(assignment__comparison__study=study)
    rows = list(judged.values_list("gold_correct", "assignment__comparison_id"))
    missed = tuple(cid for ok, cid in rows if not ok)
    return GoldStats(correct=len(rows) - len(missed), total=len(rows), missed=missed)


def rater_stats(*, user: Any, with_checks: bool = True) -> dict[str, Any]:
    """A rater's numbers. Without `with_checks` (what a rater sees of themselves) nothing
    tells which past tasks were gold or mirrored, so polling cannot reveal the checks."""
    profile = Rater.objects.filter(user=user).first()
    judgments = Judgment.objects.filter(assignment__rater=user)
    gold = gold_stats(study=None, user=user)
    mirrors = judgments.filter(mirror_consistent__isnull=False).aggregate(
        total=Count("id"), same=Count("id", filter=Q(mirror_consistent=True))
    )
    stats: dict[str, Any] = {
        "username": user.get_username(),
        "external_id": profile.external_id if profile else "",
        "qualified": bool(profile and profile.is_qualified),
        "stopped": bool(profile and profile.is_flagged),
        "judgments": judgments.count(),
    }
    if not with_checks:
        return stats
    return {
        **stats,
        "gold_answers": gold.total,
        "gold_accuracy": round(gold.accuracy, 3) if gold.total else None,
        "mirror_repeats": mirrors["total"],
        "mirror_consistency": round(mirrors["same"] / mirrors["total"], 3)
        if mirrors["total"]
        else None,
    }


def pair_ci_widths(*, study: Study) -> dict[int, float]:
    """Per variant pair: the width of its headline interval (majority votes, prompts as
    clusters), the wider of Quality and Faithfulness, over real judgments of unflagged raters;
    1.0 for a pair without any."""
    from analysis.intervals import headline_width  # NumPy only, and only in adaptive studies

    counts = {
        f"{question}_{choice}": Count("id", filter=Q(**{question: choice}))
        for question in ("quality", "faithfulness")
        for choice in (Judgment.Choice.A, Judgment.Choice.B, Judgment.Choice.TIE)
    }
    rows = (
        Judgment.objects.filter(
            assignment__comparison__study=study,
            assignment__comparison__kind=Comparison.Kind.REAL,
            is_flagged=False,
        )
        .exclude(assignment__rater__rater__is_flagged=True)
        .order_by()
        .values_list(
            "assignment__comparison_id",
            "assignment__comparison__pair_id",
            "assignment__comparison__prompt_id",
        )
        .annotate(**counts)
    )
    by_pair: dict[int, list[tuple[int, ...]]] = {}
    for _comparison, pair_id, prompt_id, *votes in rows:
        by_pair.setdefault(pair_id, []).append((prompt_id, *votes))
    widths = {pair_id: 1.0 for pair_id in study.pairs.values_list("id", flat=True)}
    for pair_id, comparisons in by_pair.items():
        prompts = [c[0] for c in comparisons]
        widths[pair_id] = max(
            headline_width(prompts, [c[1:4] for c in comparisons]),
            headline_width(prompts, [c[4:7] for c in comparisons]),
        )
    return widths


def adaptive_converged(*, study: Study) -> bool:
    widths = pair_ci_widths(study=study)
    return bool(widths) and all(w < study.target_ci_width for w in widths.values())
