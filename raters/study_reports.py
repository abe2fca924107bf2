"""Reads for a study's staff page: live progress, the raters table, the bonus pay file and the
list of workers who earned the completion code."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from . import selectors
from .models import Assignment, Comparison, Judgment, Rater, Study
from .spreadsheets import neutralise_formula

# A rater counts as active now with an open task or a judgment this recent.
ACTIVE_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class PairProgress:
    pair_id: int
    label: str
    comparisons: int
    judgments: int
    needed: int
    ci_width: float


@dataclass(frozen=True)
class StudyProgress:
    comparisons: int
    gold: int
    judgments: int  # real, from raters in good standing
    check_judgments: int  # gold and mirrored repeats
    needed: int  # k × comparisons
    raters: int
    raters_active: int
    pairs: tuple[PairProgress, ...]

    @property
    def percent(self) -> float:
        return round(100 * min(self.judgments, self.needed) / self.needed, 1) if self.needed else 0

    def as_json(self) -> dict[str, Any]:
        return {
            "comparisons": self.comparisons,
            "gold": self.gold,
            "judgments": self.judgments,
            "check_judgments": self.check_judgments,
            "needed": self.needed,
            "percent": self.percent,
            "raters": self.raters,
            "raters_active": self.raters_active,
            "pairs": [
                {
                    "id": p.pair_id,
                    "label": p.label,
                    "comparisons": p.comparisons,
                    "judgments": p.judgments,
                    "needed": p.needed,
                    "ci_width": round(p.ci_width, 3),
                }
                for p in self.pairs
            ],
        }


def study_progress(*, study: Study, now: Any = None) -> StudyProgress:
    now = now or timezone.now()
    judgments = Judgment.objects.filter(assignment__comparison__study=study)
    real = Q(assignment__comparison__kind=Comparison.Kind.REAL)
    counts = judgments.aggregate(
        real=Count("id", filter=real & Q(is_flagged=False)),
        checks=Count("id", filter=~real),
        raters=Count("assignment__rater", distinct=True),
    )
    active = (
        Assignment.objects.filter(comparison__study=study)
        .filter(
            Q(status=Assignment.Status.ACTIVE, expires_at__gt=now)
            | Q(judgment__created_at__gte=now - ACTIVE_WINDOW)
        )
        .values("rater")
        .distinct()
        .count()
    )
    per_pair = dict(
        Comparison.objects.filter(study=study, kind=Comparison.Kind.REAL)
        .values_list("pair_id")
        .annotate(n=Count("id"))
    )
    judged = dict(
        judgments.filter(real, is_flagged=False)
        .values_list("assignment__comparison__pair_id")
        .annotate(n=Count("id"))
    )
    widths = selectors.pair_ci_widths(study=study)
    k = study.raters_per_pair
    pairs = tuple(
        PairProgress(
            pair_id=pair.pk,
            label=f"{pair.variant_a} vs {pair.variant_b}",
            comparisons=per_pair.get(pair.pk, 0),
            judgments=judged.get(pair.pk, 0),
            needed=k * per_pair.get(pair.pk, 0),
            ci_width=widths.get(pair.pk, 1.0),
        )
        for pair in study.pairs.select_related("variant_a", "variant_b").order_by("id")
    )
    return StudyProgress(
        comparisons=sum(per_pair.values()),
        gold=study.comparisons.filter(kind=Comparison.Kind.GOLD).count(),
        judgments=counts["real"],
        check_judgments=counts["checks"],
        needed=k * sum(per_pair.values()),
        raters=counts["raters"],
        raters_active=active,
        pairs=pairs,
    )


@dataclass(frozen=True)
class PayRule:
    """Per task done, plus a bonus for raters whose gold accuracy reaches `min_gold_accuracy`
    (at least one gold answer needed). Raters stopped by quality control get nothing."""

    per_task: Decimal = Decimal("0")
    bonus: Decimal = Decimal("0")
    min_gold_accuracy: float = 0.8

    def amount(self, *, tasks: int, gold_total: int, gold_correct: int, flagged: bool) -> Decimal:
        if flagged or tasks == 0:
            return Decimal("0.00")
        amount = self.per_task * tasks
        if gold_total and gold_correct / gold_total >= self.min_gold_accuracy:
            amount += self.bonus
        return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class RaterRow:
    worker_id: str
    tasks: int
    seconds: float
    gold_total: int
    gold_correct: int
    mirror_total: int
    mirror_same: int
    flagged: bool
    flagged_reason: str
    amount: Decimal

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_total if self.gold_total else None

    @property
    def hourly(self) -> Decimal | None:
        """What the amount comes to per hour of measured rating time."""
        if self.seconds <= 0:
            return None
        return (self.amount * Decimal(3600) / Decimal(str(self.seconds))).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )


def rater_rows(*, study: Study, rule: PayRule) -> list[RaterRow]:
    """One row per rater who judged anything in the study, most tasks first."""
    rows = list(
        Judgment.objects.filter(assignment__comparison__study=study)
        .values("assignment__rater")
        .annotate(
            tasks=Count("id"),
            ms=Sum("time_spent_ms"),
            gold_total=Count("id", filter=Q(gold_correct__isnull=False)),
            gold_correct=Count("id", filter=Q(gold_correct=True)),
            mirror_total=Count("id", filter=Q(mirror_consistent__isnull=False)),
            mirror_same=Count("id", filter=Q(mirror_consistent=True)),
        )
        .order_by("-tasks", "assignment__rater")
    )
    profiles = {
        p.user_id: p
        for p in Rater.objects.filter(
            user_id__in=[r["assignment__rater"] for r in rows]
        ).select_related("user")
    }
    out = []
    for row in rows:
        profile = profiles.get(row["assignment__rater"])
        flagged = bool(profile and profile.is_flagged)
        worker = profile.worker_id if profile else ""
        out.append(
            RaterRow(
                worker_id=worker or str(row["assignment__rater"]),
                tasks=row["tasks"],
                seconds=(row["ms"] or 0) / 1000,
                gold_total=row["gold_total"],
                gold_correct=row["gold_correct"],
                mirror_total=row["mirror_total"],
                mirror_same=row["mirror_same"],
                flagged=flagged,
                flagged_reason=profile.flagged_reason if profile and flagged else "",
                amount=rule.amount(
                    tasks=row["tasks"],
                    gold_total=row["gold_total"],
                    gold_correct=row["gold_correct"],
                    flagged=flagged,
                ),
            )
        )
    return out


def pay_file(rows: list[RaterRow]) -> str:
    """Bulk-bonus lines as crowd platforms take them: `worker_id,amount`, nothing owed left out
    (an id with a comma or quote in it is quoted, CSV style; one a spreadsheet would run as a
    formula starts with an apostrophe, `spreadsheets.neutralise_formula`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        if row.amount > 0:
            writer.writerow([neutralise_formula(row.worker_id), str(row.amount)])
    return out.getvalue()


def completion_file(*, study: Study) -> str:
    """The worker ids who earned this study's completion code, one per line, most tasks first.

    The code itself is the same for every worker (crowd platforms check one code per study), so
    a worker who earned it can pass it on. This list is what the admin approves on the platform:
    a submission from anyone else did not earn the code here. Each rater is asked the same
    question the finish page asks (`selectors.crowd_code`), so the list and the pages agree.
    """
    raters = list(
        Judgment.objects.filter(assignment__comparison__study=study)
        .values("assignment__rater")
        .annotate(tasks=Count("id"))
        .order_by("-tasks", "assignment__rater")
        .values_list("assignment__rater", flat=True)
    )
    profiles = Rater.objects.filter(user_id__in=raters).select_related("user")
    by_user = {profile.user_id: profile for profile in profiles}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for user_id in raters:
        profile = by_user.get(user_id)
        if profile is None:
            continue
        code = selectors.crowd_code(study=study, rater=profile.user)
        if code is not None and code.kind == "completion":
            writer.writerow([neutralise_formula(profile.worker_id)])
    return out.getvalue()
