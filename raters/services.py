"""Writes for rating: studies, assignment, JUICE judgments and rater quality control."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import random
import re
import secrets
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F
from django.utils import timezone
from django.utils.crypto import salted_hmac

from generation.models import Video

from . import hot_path, juice, quiz, selectors
from .models import Assignment, Comparison, Judgment, Rater, Study

CLAIM_ATTEMPTS = 20


class RatingRefused(PermissionDenied):
    """The rater may not rate now: `code` is 'not_qualified' or 'stopped'."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --- Studies ---------------------------------------------------------------------------------


def _new_code() -> str:
    return secrets.token_hex(4).upper()


# --- Raters ----------------------------------------------------------------------------------


def rater_profile(*, user: Any) -> Rater:
    profile, _ = Rater.objects.get_or_create(user=user)
    return profile


def check_external_id(*, study: Study, external_id: str) -> str:
    """The worker id of a start link, stripped; ValidationError with a message if unusable."""
    param = study.external_id_param
    external_id = external_id.strip()
    if not external_id:
        raise ValidationError({param: f"This link is missing the {param} parameter (worker id)."})
    if len(external_id) > 200:
        raise ValidationError({param: "The worker id is too long (200 characters at most)."})
    # PostgreSQL text cannot hold NUL, and no crowd platform's ids contain control characters.
    if any(unicodedata.category(char) == "Cc" for char in external_id):
        raise ValidationError({param: "The worker id contains control characters."})
    return external_id


class ResumeRefused(PermissionDenied):
    """A worker id that already has a rater is resumed only with proof (see start_crowd_session)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def start_link_signature(*, study: Study, external_id: str) -> str:
    """The `sig` of a signed start link: for platforms (or staff) that hand each worker their own
    link. It resumes that worker in that study without a resume code."""
    return salted_hmac("raters.start_link", f"{study.slug}\n{external_id}").hexdigest()[:32]


def signed_start_url(*, study: Study, external_id: str, base_url: str) -> str:
    """The full signed start link of one worker in a study."""
    from urllib.parse import urlencode, urljoin

    from django.urls import reverse

    query = urlencode(
        {
            study.external_id_param: external_id,
            "sig": start_link_signature(study=study, external_id=external_id),
        }
    )
    return urljoin(base_url, reverse("raters:start", args=[study.slug])) + "?" + query


def resume_code(*, rater: Rater) -> str:
    """The code shown to a crowd worker on their first start (and on their pages afterwards):
    what resumes their worker id from another browser. Derived from the site's secret key, so
    nothing is stored, and it changes if the key does."""
    digest = salted_hmac("raters.resume_code", f"{rater.user_id}\n{rater.external_id}").digest()
    text = base64.b32encode(digest).decode()[:10]
    return f"{text[:5]}-{text[5:]}"


def _same_code(given: str, expected: str) -> bool:
    def normal(code: str) -> str:
        # Base32 has no 0, 1 or 8: read them as the letters people mistake them for.
        code = code.upper().translate(str.maketrans("018", "OIB"))
        return re.sub(r"[^A-Z2-7]", "", code)

    return hmac.compare_digest(normal(given), normal(expected))


def start_crowd_session(
    *,
    study: Study,
    external_id: str,
    signature: str = "",
    code: str = "",
    signed_in: Any = None,
) -> Any:
    """The passwordless user behind a crowd worker id: created at the first start.

    A worker id that already has a rater is a name, not a credential (other workers, the
    platform and anyone shown a URL can know it): it is resumed only by the browser already
    signed in as that rater, through a signed start link of this study, or with the resume
    code shown at the first start. Anything else raises ResumeRefused.
    """
    external_id = check_external_id(study=study, external_id=external_id)
    profile = Rater.objects.filter(external_id=external_id).select_related("user").first()
    if profile is not None:
        signed = start_link_signature(study=study, external_id=external_id)
        if (
            (signed_in is not None and signed_in.pk == profile.user_id)
            or (signature and hmac.compare_digest(signature.encode(), signed.encode()))
            or (code and _same_code(code, resume_code(rater=profile)))
        ):
            return profile.user
        raise ResumeRefused(
            "That resume code is not right." if code else "This worker id has already started."
        )
    safe = re.sub(r"[^A-Za-z0-9_.-]", "", external_id)[:60]
    username = f"crowd-{safe}" if safe == external_id else f"crowd-{secrets.token_hex(8)}"
    users = get_user_model()
    with transaction.atomic():
        user, _ = users.objects.get_or_create(username=username)
        if user.has_usable_password():
            user.set_unusable_password()
            user.save(update_fields=["password"])
        Rater.objects.update_or_create(user=user, defaults={"external_id": external_id})
    return user


def qualify_rater(*, user: Any) -> Rater:
    """Mark a rater as qualified (the quiz passed, or a trusted rater set up by staff)."""
    profile = rater_profile(user=user)
    if profile.qualified_at is None:
        profile.qualified_at = timezone.now()
        profile.save(update_fields=["qualified_at"])
    return profile


@dataclass(frozen=True)
class QuizMistake:
    """A wrong (or missing) answer, explained: what the failed-attempt page shows."""

    number: int
    question: str
    given: str
    explanation: str


@dataclass(frozen=True)
class QuizResult:
    passed: bool
    score: int
    total: int
    wrong: tuple[str, ...]
    attempts_left: int
    mistakes: tuple[QuizMistake, ...] = ()


def take_quiz(*, user: Any, answers: Mapping[str, str]) -> QuizResult:
    """Grade one attempt against the paper the rater was shown (selectors.quiz_paper); a pass
    qualifies the rater, running out of attempts screens them out."""
    with transaction.atomic():
        profile = Rater.objects.select_for_update().get(pk=rater_profile(user=user).pk)
        total = len(quiz.QUESTIONS)
        if profile.is_qualified:
            return QuizResult(True, total, total, (), 0)
        if profile.quiz_attempts >= quiz.MAX_ATTEMPTS:
            raise RatingRefused("You have used all quiz attempts.", code="not_qualified")
        paper = selectors.quiz_paper(rater=profile)
        mistakes = tuple(
            QuizMistake(
                number=number,
                question=question.text,
                given=question.label_of(str(answers.get(question.key, ""))) or "no answer",
                explanation=question.explanation,
            )
            for number, question in enumerate(paper, start=1)
            if answers.get(question.key) != question.answer
        )
        score = total - len(mistakes)
        profile.quiz_attempts += 1
        passed = score >= quiz.PASS_MARK
        if passed:
            profile.qualified_at = timezone.now()
        profile.save(update_fields=["quiz_attempts", "qualified_at"])
    wrong = tuple(paper[m.number - 1].key for m in mistakes)
    left = quiz.MAX_ATTEMPTS - profile.quiz_attempts
    return QuizResult(passed, score, total, wrong, left, mistakes)


def _check_profile(*, study: Study, profile: Rater) -> None:
    if profile.is_flagged:
        raise RatingRefused(
            "Your answers did not pass our quality checks, so this study has ended for you.",
            code="stopped",
        )
    if study.require_qualification and not profile.is_qualified:
        raise RatingRefused(
            "Please pass the short qualification quiz before rating.", code="not_qualified"
        )


@transaction.atomic
def stop_rater(*, rater: Rater, reason: str) -> None:
    """Stop a rater: judgments kept but flagged, their slots go back to the pool."""
    locked = Rater.objects.select_for_update().get(pk=rater.pk)
    if locked.is_flagged:
        return
    locked.is_flagged = True
    locked.flagged_reason = reason
    locked.flagged_at = timezone.now()
    locked.save(update_fields=["is_flagged", "flagged_reason", "flagged_at"])
    Judgment.objects.filter(assignment__rater_id=locked.user_id).update(is_flagged=True)
    held = Assignment.objects.filter(
        rater_id=locked.user_id,
        comparison__kind=Comparison.Kind.REAL,
        status__in=[Assignment.Status.ACTIVE, Assignment.Status.DONE],
    ).values_list("comparison_id", flat=True)
    Comparison.objects.filter(pk__in=list(held), assigned_count__gt=0).update(
        assigned_count=F("assigned_count") - 1
    )
    Assignment.objects.filter(rater_id=locked.user_id, status=Assignment.Status.ACTIVE).update(
        status=Assignment.Status.EXPIRED
    )


@transaction.atomic
def reinstate_rater(*, rater: Rater) -> None:
    """Undo a stop (staff decision): judgments unflagged and slot counts recomputed."""
    Rater.objects.filter(pk=rater.pk).update(is_flagged=False, flagged_at=None)
    Judgment.objects.filter(assignment__rater_id=rater.user_id).update(is_flagged=False)
    studies = Study.objects.filter(comparisons__assignments__rater_id=rater.user_id).distinct()
    for study in studies:
        recount_assignments(study=study)


def recount_assignments(*, study: Study) -> None:
    """Recompute `assigned_count` from the assignments (after manual edits in the admin)."""
    counts = dict(
        Assignment.objects.filter(
            comparison__study=study,
            status__in=[Assignment.Status.ACTIVE, Assignment.Status.DONE],
        )
        .exclude(rater__rater__is_flagged=True)
        .values_list("comparison_id")
        .annotate(n=Count("id"))
    )
    for comparison in study.comparisons.only("id", "assigned_count"):
        wanted = counts.get(comparison.id, 0)
        if comparison.assigned_count != wanted:
            Comparison.objects.filter(pk=comparison.pk).update(assigned_count=wanted)


# --- Assignment ------------------------------------------------------------------------------


def expire_stale_assignments(*, study: Study | None = None) -> int:
    """Abandoned assignments go back to the pool; returns how many expired."""
    now = timezone.now()
    stale = Assignment.objects.filter(status=Assignment.Status.ACTIVE, expires_at__lt=now)
    if study is not None:
        stale = stale.filter(comparison__study=study)
    expired = 0
    for assignment_id, comparison_id, kind in stale.values_list(
        "id", "comparison_id", "comparison__kind"
    ):
        with transaction.atomic():
            changed = Assignment.objects.filter(
                pk=assignment_id, status=Assignment.Status.ACTIVE
            ).update(status=Assignment.Status.EXPIRED)
            if changed and kind == Comparison.Kind.REAL:
                Comparison.objects.filter(pk=comparison_id, assigned_count__gt=0).update(
                    assigned_count=F("assigned_count") - 1
                )
            expired += changed
    return expired


class NextTask:
    """What the rating page and API show next: the task's payload (None: nothing left) and
    the rater's progress with it counted. `assignment` loads the model on first use."""

    def __init__(
        self,
        *,
        assignment_id: int | None,
        progress: dict[str, int],
        payload: dict[str, Any] | None,
        assignment: Assignment | None = None,
    ) -> None:
        self.assignment_id = assignment_id
        self.progress = progress
        self.payload = payload
        self._assignment = assignment

    @property
    def assignment(self) -> Assignment | None:
        if self.assignment_id is not None and self._assignment is None:
            self._assignment = Assignment.objects.get(pk=self.assignment_id)
        return self._assignment


def next_assignment(*, study: Study, rater: Any) -> Assignment | None:
    """The rater's open assignment, or a new one; None when nothing is left for this rater."""
    return next_task(study=study, rater=rater).assignment


def next_task(*, study: Study, rater: Any) -> NextTask:
    """The rater's open assignment or a new one, with what its page shows, and progress.

    Raises RatingRefused for a rater who is not qualified or was stopped by quality control.
    """
    if not study.is_active:
        raise RatingRefused(_stopped_message(study), code="closed")
    if _sweep_due(study):
        expire_stale_assignments(study=study)
    with transaction.atomic():
        # One request at a time per rater: a double click must not hold two assignments.
        profile = _locked_profile(rater)
        _check_profile(study=study, profile=profile)
        state = selectors.rater_state(study=study, rater=rater)
        room = selectors.study_room(study=study)
        created: Assignment | None = None
        if state.active is not None:
            assignment_id: int | None = state.active
            Assignment.objects.filter(pk=state.active).update(expires_at=_expiry(study))
        else:
            created = _new_assignment(study=study, rater=rater, state=state, room=room)
            assignment_id = created.pk if created is not None else None
            if created is not None:
                state = state.with_new(created)
        progress = selectors.rater_progress(study=study, rater=rater, state=state, room=room)
        payload = (
            selectors.task_payload(assignment_id=assignment_id, study=study, progress=progress)
            if assignment_id is not None
            else None
        )
    return NextTask(
        assignment_id=assignment_id, progress=progress, payload=payload, assignment=created
    )


def _locked_profile(user: Any) -> Rater:
    """The rater's profile, read and row-locked until the transaction ends (created first if
    missing): a stop by quality control that committed a moment ago counts."""
    profile = hot_path.locked_profile(user.pk)
    if profile is not None:
        return profile
    rater_profile(user=user)
    return Rater.objects.select_for_update().get(user=user)


_last_sweep: dict[str, float] = {}


def _sweep_due(study: Study) -> bool:
    """Abandoned assignments go back lazily, at most every JUICE_EXPIRY_SWEEP_SECONDS per
    study and web process (the beat task `raters.expire_assignments` sweeps too)."""
    every = settings.JUICE_EXPIRY_SWEEP_SECONDS
    key = selectors.study_identity(study)
    now = time.monotonic()
    if every > 0 and now - _last_sweep.get(key, -math.inf) < every:
        return False
    _last_sweep[key] = now
    return True


def _new_assignment(
    *, study: Study, rater: Any, state: selectors.RaterState, room: selectors.StudyRoom
) -> Assignment | None:
    total = state.taken
    if study.tasks_per_rater and total >= study.tasks_per_rater:
        return None
    counts = state.taken_by_kind
    gold_due = selectors.check_due(
        study=study,
        rater_id=rater.pk,
        kind=Comparison.Kind.GOLD,
        done=counts.get(Comparison.Kind.GOLD, 0),
        total=total,
    )
    mirror_due = selectors.check_due(
        study=study,
        rater_id=rater.pk,
        kind=Comparison.Kind.MIRROR,
        done=counts.get(Comparison.Kind.MIRROR, 0),
        total=total,
    )
    if gold_due or mirror_due:
        # Checks (gold, mirrors) only while real work is left for this rater. The estimate
        # the progress counter uses, so a check costs no query a real task does not.
        if not selectors.real_work_left(study=study, state=state, room=room):
            return None
        check = _assign_gold(study=study, rater=rater) if gold_due else None
        if check is None and mirror_due:
            check = _assign_mirror(study=study, rater=rater)
        if check is not None:
            return check
    return _assign_real(study=study, rater=rater)


def _expiry(study: Study) -> Any:
    return timezone.now() + timedelta(minutes=study.assignment_timeout_minutes)


def _assign_real(*, study: Study, rater: Any) -> Assignment | None:
    """Claim the best free real comparison: fewest raters so far (adaptive studies: the pairs
    whose confidence interval is widest first), skipping rows other raters are claiming."""
    # The ORM queryset is built only where it is used: building it costs a fixed-mode claim
    # a third of a millisecond, which would also make real tasks slower to hand out than checks.
    for _attempt in range(CLAIM_ATTEMPTS):
        if study.mode == Study.Mode.ADAPTIVE:
            width = selectors.pair_ci_widths(study=study)
            candidates = selectors.real_candidates(study=study, rater=rater)
            rows = list(
                candidates.values_list("id", "pair_id", "is_calibration", "assigned_count")[:200]
            )
            rows.sort(key=lambda r: (not r[2], -width.get(r[1], 1.0), r[3], r[0]))
            for comparison_id, *_rest in rows[:40]:
                claimed = hot_path.claim_comparison(
                    comparison_id=comparison_id, raters_per_pair=study.raters_per_pair
                )
                assignment = _hand_out(study=study, rater=rater, claimed=claimed)
                if assignment is not None:
                    return assignment
        else:
            claimed = hot_path.claim_first_free(
                study_id=study.pk,
                raters_per_pair=study.raters_per_pair,
                rater_id=rater.pk,
                repeat_prompts=study.allow_repeat_prompts,
            )
            assignment = _hand_out(study=study, rater=rater, claimed=claimed)
            if assignment is not None:
                return assignment
        # Nothing claimable: finished for this rater, or the last free rows are being
        # claimed by others right now (their transactions end within milliseconds).
        if not selectors.real_candidates(study=study, rater=rater).exists():
            return None
        time.sleep(0.005)
    return None


def _hand_out(
    *, study: Study, rater: Any, claimed: tuple[int, int, int] | None
) -> Assignment | None:
    """Hand the rater the real comparison slot just `claimed` (id, slot, prompt id)."""
    if claimed is None:
        return None
    comparison_id, slot, prompt_id = claimed
    assignment = _insert_assignment(
        study=study,
        rater=rater,
        comparison={"id": comparison_id, "kind": Comparison.Kind.REAL, "prompt_id": prompt_id},
        left_is_a=left_is_a_for_slot(
            comparison_id=comparison_id, slot=slot, raters=study.raters_per_pair
        ),
    )
    if assignment is None:
        # The rater already held it: possible only without row locks (SQLite), where two
        # requests of one rater can race. The slot goes back.
        Comparison.objects.filter(pk=comparison_id).update(assigned_count=F("assigned_count") - 1)
    return assignment


def _insert_assignment(
    *, study: Study, rater: Any, comparison: dict[str, Any], left_is_a: bool
) -> Assignment | None:
    """Insert the rater's assignment to `comparison` (id, kind, prompt_id) in one statement;
    None if they already hold it. Real tasks and gold checks both come through here, so
    handing out either costs the same statements (and time)."""
    assignment = Assignment(
        comparison_id=comparison["id"],
        rater=rater,
        left_is_a=left_is_a,
        status=Assignment.Status.ACTIVE,
        expires_at=_expiry(study),
        created_at=timezone.now(),
    )
    assignment_id = hot_path.insert_assignment(assignment)
    if assignment_id is None:
        return None
    assignment.pk = assignment_id
    assignment._state.adding = False
    assignment._state.db = connection.alias
    # What RaterState.with_new and the payload read, without loading the comparison.
    assignment.comparison = hot_path.instance(Comparison, {**comparison, "study_id": study.pk})
    return assignment


def left_is_a_for_slot(*, comparison_id: int, slot: int, raters: int) -> bool:
    """Which side variant A is shown on to the `slot`-th rater (1..k) of a comparison.

    Each comparison gets its own secret random order of a balanced sequence (as many left as
    right; for odd k the extra alternates between comparisons), so sides are random to every
    rater yet balanced per comparison and per variant pair, without counting anything. A slot
    given back by an expired assignment is given out again with the same side.
    """
    digest = hashlib.blake2b(
        str(comparison_id).encode(), key=settings.SECRET_KEY.encode()[:64], digest_size=8
    ).digest()
    order = [True] * (raters // 2) + [False] * (raters // 2)
    if raters % 2:
        order.append(comparison_id % 2 == 0)
    random.Random(digest).shuffle(order)
    return order[(slot - 1) % len(order)] if order else random.random() < 0.5


def _assign_gold(*, study: Study, rater: Any) -> Assignment | None:
    """A gold check the rater has not had, picked, counted and inserted as a real task is:
    the same two statements, an UPDATE that picks and an INSERT, so that handing out a check
    costs what a real task costs (its response time is all a browser could compare)."""
    claimed = hot_path.claim_gold(study_id=study.pk, rater_id=rater.pk)
    if claimed is None:
        return None
    comparison_id, prompt_id = claimed
    return _insert_assignment(
        study=study,
        rater=rater,
        comparison={"id": comparison_id, "kind": Comparison.Kind.GOLD, "prompt_id": prompt_id},
        left_is_a=random.random() < 0.5,
    )


def _assign_mirror(*, study: Study, rater: Any) -> Assignment | None:
    """Repeat a pair the rater judged at least two tasks ago, with the sides swapped."""
    source = selectors.mirror_source(study=study, rater=rater)
    if source is None:
        return None
    mirror_id = source.mirror_id
    if mirror_id is None:  # the first repeat of this pair: made once, shared by raters
        try:
            with transaction.atomic():
                mirror_id = Comparison.objects.create(
                    study=study,
                    pair_id=source.pair_id,
                    kind=Comparison.Kind.MIRROR,
                    prompt_id=source.prompt_id,
                    video_a_id=source.video_a_id,
                    video_b_id=source.video_b_id,
                    # Shown exactly as the original was: a repeat must look like one.
                    shown_a_id=source.shown_a_id,
                    shown_b_id=source.shown_b_id,
                    mirror_of_id=source.comparison_id,
                ).pk
        except IntegrityError:
            mirror_id = Comparison.objects.get(
                mirror_of_id=source.comparison_id, kind=Comparison.Kind.MIRROR
            ).pk
    return _insert_assignment(
        study=study,
        rater=rater,
        comparison={"id": mirror_id, "kind": Comparison.Kind.MIRROR, "prompt_id": source.prompt_id},
        left_is_a=not source.left_is_a,
    )


# --- Judgments -------------------------------------------------------------------------------


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
    comparison = assignment.comparison
    study = comparison.study
    profile = _profile_of(assignment.rater)
    _check_profile(study=study, profile=profile)
    check_open_for_submit(study=study, claimed_at=assignment.created_at)
    errors: dict[str, Any] = {}
    for question, answer in (("quality", quality), ("faithfulness", faithfulness)):
        try:
            check_answer(study=study, question=question, answer=answer)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if not errors:
        try:
            check_watch(
                study=study, assignment=assignment, watch=watch, simulated=profile.is_simulated
            )
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        # The first submit flips the task to done (and holds its row until commit); a repeat,
        # waiting on that row, then finds it done and answers with the first judgment.
        won = Assignment.objects.filter(pk=assignment.pk, status=Assignment.Status.ACTIVE).update(
            status=Assignment.Status.DONE
        )
        if not won:
            locked = (
                Assignment.objects.select_for_update(of=("self",))
                .select_related("judgment")
                .get(pk=assignment.pk)
            )
            existing = _judgment_of(locked)
            if existing is not None:
                return existing, False
            if locked.status == Assignment.Status.EXPIRED and not _reclaim(locked, study):
                raise ValidationError({"token": "This task expired; please load the next one."})
            Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.DONE)
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
            is_simulated=profile.is_simulated,
        )
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
        judgment.save(force_insert=True)
        assignment.status = Assignment.Status.DONE
    if judgment.gold_correct is not None:
        _apply_gold_threshold(study=study, profile=profile)
        judgment.refresh_from_db(fields=["is_flagged"])
    return judgment, True


def check_open_for_submit(
    *, study: Study, claimed_at: datetime, now: datetime | None = None
) -> None:
    """A paused or closed study takes an answer only to a task claimed before it stopped,
    and only within JUICE_CLOSE_GRACE_MINUTES of the stop (raises RatingRefused)."""
    if study.is_active:
        return
    now = now or timezone.now()
    since = study.deactivated_at
    grace = timedelta(minutes=settings.JUICE_CLOSE_GRACE_MINUTES)
    if since is None or claimed_at >= since or now > since + grace:
        raise RatingRefused(_stopped_message(study), code="closed")


def _stopped_message(study: Study) -> str:
    if study.closed_at is not None:
        return "This study is closed: it takes no more answers. Thank you for your help."
    return "This study is paused: it takes no answers for now. Thank you for your help."


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


# --- Gold comparisons ------------------------------------------------------------------------


def build_gold_comparisons(*, study: Study, count: int = 8, seed: int = 0) -> int:
    """Hidden gold comparisons: a real video against a degraded copy of it (or, for
    faithfulness, against a video of another prompt). Returns how many were made.

    Degradations rotate through frozen frames, heavy blur, shuffled frames and other prompt.
    """
    import tempfile
    from pathlib import Path

    import numpy as np
    from django.core.files.base import ContentFile

    from . import gold
    from .models import GoldClip

    rng = np.random.default_rng(seed)
    reals = list(
        study.comparisons.filter(kind=Comparison.Kind.REAL).select_related("video_a", "video_b")
    )
    if not reals:
        return 0
    order = rng.permutation(len(reals))[: max(0, count)]
    kinds = list(GoldClip.Degradation)
    made = 0
    with tempfile.TemporaryDirectory() as tmp:
        for index, real_index in enumerate(order):
            source_comparison = reals[int(real_index)]
            degradation = kinds[index % len(kinds)]
            others = [c for c in reals if c.prompt_id != source_comparison.prompt_id]
            if degradation == GoldClip.Degradation.OTHER_PROMPT and not others:
                degradation = GoldClip.Degradation.FROZEN
            good = source_comparison.video_a if rng.random() < 0.5 else source_comparison.video_b
            partner = (
                source_comparison.video_b
                if good == source_comparison.video_a
                else source_comparison.video_a
            )
            if degradation == GoldClip.Degradation.OTHER_PROMPT:
                bad_source = others[int(rng.integers(len(others)))].video_a
                frames, fps = _read_video(bad_source, Path(tmp))
            else:
                bad_source = good
                frames, fps = _read_video(good, Path(tmp))
                if degradation == GoldClip.Degradation.FROZEN:
                    frames = gold.frozen(frames)
                elif degradation == GoldClip.Degradation.BLUR:
                    frames = gold.blurred(frames)
                else:
                    frames = gold.shuffled(frames, rng=rng)
            out = Path(tmp) / f"gold-{index}.mp4"
            poster = Path(tmp) / f"gold-{index}.png"
            # Written like the real video it replaces (the partner), at its byte sizes: file
            # statistics must not tell a gold check from a real comparison.
            gold.write_sized_mp4(frames, out, fps=min(fps, good.fps), size=_size(partner.file))
            gold.write_sized_poster(frames[0], poster, size=_size(partner.poster))
            with transaction.atomic():
                clip = GoldClip(source=bad_source, degradation=degradation)
                clip.file.save("clip.mp4", ContentFile(out.read_bytes()), save=False)
                clip.poster.save("clip.png", ContentFile(poster.read_bytes()), save=False)
                clip.save()
                Comparison.objects.create(
                    study=study,
                    pair=source_comparison.pair,
                    kind=Comparison.Kind.GOLD,
                    prompt=source_comparison.prompt,
                    video_a=good,
                    video_b=partner,
                    gold_clip=clip,
                    gold_question="faithfulness"
                    if degradation == GoldClip.Degradation.OTHER_PROMPT
                    else "quality",
                )
            made += 1
    return made


def _read_video(video: Video, tmp: Any) -> tuple[Any, int]:
    """A stored video's frames at the size its model made them (see gold.native_frames)."""
    from . import gold

    path = tmp / f"source-{video.pk}.mp4"
    with video.file.open("rb") as handle:
        path.write_bytes(handle.read())
    frames, fps = gold.read_frames(path)
    return gold.native_frames(frames, height=video.height, width=video.width), fps


def _size(field: Any) -> int:
    try:
        return int(field.size) if field else 0
    except OSError:
        return 0
