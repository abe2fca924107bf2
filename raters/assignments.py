"""Handing out tasks: the rater's open assignment or a new one (a real comparison, a gold check
or a mirrored repeat).

The claims' statements are in raters.hot_path, abandoned tasks' return in raters.expiry; what
decides which task comes next is here.
"""

from __future__ import annotations

import functools
import hashlib
import random
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from . import expiry, hot_path, selectors
from .auth import confirm
from .models import Assignment, Comparison, Rater, Study
from .profiles import RatingRefused, check_profile, rater_profile, stopped_message

CLAIM_ATTEMPTS = 20
# Where a new assignment keeps the page data its insert returned (hot_path.payload_row).
PAGE_ROW = "_page_row"


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
        raise RatingRefused(stopped_message(study), code="closed")
    if expiry.sweep_due(study):
        expiry.expire_stale_assignments(study=study)
    with transaction.atomic():
        # One request at a time per rater: a double click must not hold two assignments.
        profile = _locked_profile(rater)
        check_profile(study=study, profile=profile)
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
            selectors.task_payload(
                assignment_id=assignment_id,
                study=study,
                progress=progress,
                # A new task's page data came back with its insert.
                row=getattr(created, PAGE_ROW, None),
            )
            if assignment_id is not None
            else None
        )
    return NextTask(
        assignment_id=assignment_id, progress=progress, payload=payload, assignment=created
    )


def _locked_profile(user: Any) -> Rater:
    """The rater's profile, read and row-locked until the transaction ends (created first if
    missing): a stop by quality control that committed a moment ago counts. The user comes
    with it, and a session's user is confirmed with it (raters.auth.SessionUser)."""
    profile = hot_path.locked_profile(user.pk)
    if profile is not None:
        confirm(user, profile.user)
        return profile
    user = confirm(user, None)
    rater_profile(user=user)
    return Rater.objects.select_for_update().get(user=user)


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
        # the progress counter uses, so a check costs no query a real task does not; when it
        # says none is left, the count itself, as it may be seconds old (a slot given back
        # since) and the done page counts exactly.
        if (
            not selectors.real_work_left(study=study, state=state, room=room)
            and not selectors.real_candidates(study=study, rater=rater).exists()
        ):
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
        study_id=study.pk,
        kind=comparison["kind"],
        prompt_id=comparison["prompt_id"],
        left_is_a=left_is_a,
        status=Assignment.Status.ACTIVE,
        expires_at=_expiry(study),
        created_at=timezone.now(),
    )
    inserted = hot_path.insert_assignment(assignment)
    if inserted is None:
        return None
    assignment.pk, page_row = inserted
    setattr(assignment, PAGE_ROW, page_row)
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
    order = _side_order(comparison_id, raters, settings.SECRET_KEY)
    return order[(slot - 1) % len(order)] if order else random.random() < 0.5


@functools.lru_cache(maxsize=4096)
def _side_order(comparison_id: int, raters: int, secret: str) -> tuple[bool, ...]:
    """A comparison's order of sides (see left_is_a_for_slot), kept for its other slots rather
    than hashed and shuffled by a newly seeded generator for every task (9 µs each)."""
    digest = hashlib.blake2b(
        str(comparison_id).encode(), key=secret.encode()[:64], digest_size=8
    ).digest()
    order = [True] * (raters // 2) + [False] * (raters // 2)
    if raters % 2:
        order.append(comparison_id % 2 == 0)
    random.Random(digest).shuffle(order)
    return tuple(order)


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
