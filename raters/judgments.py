"""Recording a JUICE judgment: the answers and the watch report checked against the study's
rules, the task flipped to done once, and gold and mirror checks scored as they come in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from . import hot_path, juice, selectors
from .models import Assignment, Comparison, Judgment, Rater, Study
from .profiles import check_open_for_submit, check_profile, rater_profile, stop_rater


@dataclass(frozen=True)
class Answer:
    """One question's answer as the rater gave it: 'left', 'right' or 'tie' plus reasons."""

    side: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class WatchReport:
    """What the player measured; the server checks it against the study's rules."""

    played_through: bool = False
    watch_ms: int = 0
    time_spent_ms: int = 0
    replays: int = 0
    seeks: int = 0


def check_answer(*, study: Study, question: str, answer: Answer) -> str:
    """Validate one JUICE answer; returns the side ('left', 'right' or 'tie')."""
    if answer.side not in ("left", "right", "tie"):
        raise ValidationError({question: juice.missing_choice(question)})
    if answer.side == "tie" and not study.allow_ties:
        raise ValidationError({question: "This study asks for a choice: ties are not allowed."})
    field = f"{question}_reasons"
    if not answer.reasons:
        raise ValidationError({field: f"Pick at least one reason for your {question} choice."})
    allowed = juice.allowed_reasons(question, "tie" if answer.side == "tie" else "a")
    unknown = [r for r in answer.reasons if r not in allowed]
    if unknown:
        raise ValidationError({field: f"Unknown reason for this choice: {', '.join(unknown)}."})
    if len(set(answer.reasons)) != len(answer.reasons):
        raise ValidationError({field: "A reason was given twice."})
    return answer.side


def check_watch(
    *, study: Study, assignment: Assignment, watch: WatchReport, simulated: bool = False
) -> None:
    """The watch minimum: the time the page reports, and the server's own clock since the task
    was handed out. Simulated raters (created by staff, resumed only through signed start
    links) skip the clock, so a dry run can go at full speed (`simulate_raters --wait-scale 0`);
    their judgments are marked simulated and left out of results."""
    if not watch.played_through:
        raise ValidationError({"played_through": "Please watch both videos to the end once."})
    if watch.watch_ms < study.min_watch_ms:
        raise ValidationError(
            {"watch_ms": f"Please watch the videos for at least {study.min_watch_ms / 1000:g} s."}
        )
    if simulated:
        return
    # The claim above comes from the browser; the clock here does not.
    elapsed_ms = (timezone.now() - assignment.created_at).total_seconds() * 1000
    if elapsed_ms < study.min_watch_ms:
        raise ValidationError({"watch_ms": "That was faster than the videos can play."})


def _to_ab(side: str, left_is_a: bool) -> str:
    if side == "tie":
        return Judgment.Choice.TIE
    return Judgment.Choice.A if (side == "left") == left_is_a else Judgment.Choice.B


def record_judgment(
    *,
    assignment: Assignment,
    quality: Answer,
    faithfulness: Answer,
    watch: WatchReport,
) -> tuple[Judgment, bool]:
    """Record a justified judgment once: (judgment, created). A retry returns the first one.

    Works on any assignment; one from `selectors.assignment_for_submit` arrives with what
    this reads (comparison, study, rater profile, any judgment), so only the writes hit the
    database.
    """
    existing = _judgment_of(assignment)
    if existing is not None:
        return existing, False
    study = assignment.comparison.study
    profile = _profile_of(assignment.rater)
    check_profile(study=study, profile=profile)
    check_open_for_submit(study=study, claimed_at=assignment.created_at)
    _check_submission(
        study=study,
        assignment=assignment,
        answers={"quality": quality, "faithfulness": faithfulness},
        watch=watch,
        simulated=profile.is_simulated,
    )
    judgment = _new_judgment(
        assignment=assignment,
        quality=quality,
        faithfulness=faithfulness,
        watch=watch,
        simulated=profile.is_simulated,
    )
    # The common case in one statement: the task flips to done with its judgment inserted.
    judgment_id = hot_path.insert_judgment_if_active(judgment)
    if judgment_id is not None:
        judgment.pk = judgment_id
        judgment._state.adding = False
        judgment._state.db = connection.alias
        selectors.note_submitted(assignment, flipped=True)
    else:
        with transaction.atomic():
            existing = _take_for_judgment(assignment=assignment, study=study)
            # The task went to done some other way: the state read with it is out of date.
            selectors.note_submitted(assignment, flipped=False)
            if existing is not None:
                return existing, False
            judgment.save(force_insert=True)
    assignment.status = Assignment.Status.DONE
    if judgment.gold_correct is not None:
        _apply_gold_threshold(study=study, profile=profile)
        judgment.refresh_from_db(fields=["is_flagged"])
    return judgment, True


def _check_submission(
    *,
    study: Study,
    assignment: Assignment,
    answers: dict[str, Answer],
    watch: WatchReport,
    simulated: bool,
) -> None:
    """Both answers, then the watch report: every problem at once, as one ValidationError."""
    errors: dict[str, Any] = {}
    for question, answer in answers.items():
        try:
            check_answer(study=study, question=question, answer=answer)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if not errors:
        try:
            check_watch(study=study, assignment=assignment, watch=watch, simulated=simulated)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)


def _take_for_judgment(*, assignment: Assignment, study: Study) -> Judgment | None:
    """When the task was not active: flip it to done anyway, inside the caller's transaction,
    if it expired and its comparison still has room; the first judgment instead if a repeated
    submit recorded one (a repeat waits on the first submit's row, then finds it done)."""
    won = Assignment.objects.filter(pk=assignment.pk, status=Assignment.Status.ACTIVE).update(
        status=Assignment.Status.DONE
    )
    if won:
        return None
    locked = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("judgment")
        .get(pk=assignment.pk)
    )
    existing = _judgment_of(locked)
    if existing is not None:
        return existing
    if locked.status == Assignment.Status.EXPIRED and not _reclaim(locked, study):
        raise ValidationError({"token": "This task expired; please load the next one."})
    Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.DONE)
    return None


def _new_judgment(
    *,
    assignment: Assignment,
    quality: Answer,
    faithfulness: Answer,
    watch: WatchReport,
    simulated: bool,
) -> Judgment:
    """The judgment in A/B terms, a gold check scored, a mirrored repeat compared (unsaved)."""
    left_is_a = assignment.left_is_a
    judgment = Judgment(
        assignment=assignment,
        quality=_to_ab(quality.side, left_is_a),
        quality_reasons=list(quality.reasons),
        faithfulness=_to_ab(faithfulness.side, left_is_a),
        faithfulness_reasons=list(faithfulness.reasons),
        time_spent_ms=max(0, int(watch.time_spent_ms)),
        watch_ms=max(0, int(watch.watch_ms)),
        replays=max(0, int(watch.replays)),
        seeks=max(0, int(watch.seeks)),
        played_through=watch.played_through,
        is_simulated=simulated,
    )
    comparison = assignment.comparison
    if comparison.kind == Comparison.Kind.GOLD:
        answer = getattr(judgment, comparison.gold_question or "quality")
        judgment.gold_correct = answer == Judgment.Choice.A
    elif comparison.kind == Comparison.Kind.MIRROR:
        first = Judgment.objects.filter(
            assignment__rater_id=assignment.rater_id,
            assignment__comparison=comparison.mirror_of_id,
        ).first()
        if first is not None:
            judgment.mirror_consistent = (first.quality, first.faithfulness) == (
                judgment.quality,
                judgment.faithfulness,
            )
    return judgment


def _judgment_of(assignment: Assignment) -> Judgment | None:
    try:
        return assignment.judgment  # loaded with the assignment, or one query
    except Judgment.DoesNotExist:
        return None


def _profile_of(user: Any) -> Rater:
    try:
        profile: Rater = user.rater  # loaded with the assignment, or one query
    except Rater.DoesNotExist:
        profile = rater_profile(user=user)
    return profile


def submit_judgment(
    *,
    assignment: Assignment,
    quality: Answer,
    faithfulness: Answer,
    watch: WatchReport,
) -> Judgment:
    """Record a justified judgment once; a repeated submit returns the first one."""
    judgment, _created = record_judgment(
        assignment=assignment, quality=quality, faithfulness=faithfulness, watch=watch
    )
    return judgment


def _reclaim(assignment: Assignment, study: Study) -> bool:
    """A late answer to an expired task still counts if its comparison has room."""
    if assignment.comparison.kind == Comparison.Kind.REAL:
        taken = Comparison.objects.filter(
            pk=assignment.comparison_id, assigned_count__lt=study.raters_per_pair
        ).update(assigned_count=F("assigned_count") + 1)
        if not taken:
            return False
    assignment.status = Assignment.Status.ACTIVE
    return True


def _apply_gold_threshold(*, study: Study, profile: Rater) -> None:
    stats = selectors.gold_stats(study=study, user=profile.user)
    if stats.total < study.gold_min_answers or stats.accuracy >= study.gold_accuracy_threshold:
        return
    stop_rater(
        rater=profile,
        reason=(
            f"Gold accuracy {stats.correct}/{stats.total} ({stats.accuracy:.0%}) in study "
            f"'{study.slug}' fell under the {study.gold_accuracy_threshold:.0%} threshold; "
            f"missed gold comparisons: {', '.join(map(str, stats.missed))}."
        ),
    )
