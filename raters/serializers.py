"""DRF shapes for the rating API: input checks of form only; the rules live in services."""

from __future__ import annotations

import copy
from typing import Any

from rest_framework import serializers

from . import juice
from .models import Comparison, Judgment

SIDES = ("left", "right", "tie")


def _side_choice(question: str) -> serializers.ChoiceField:
    """left/right/tie; a missing or unknown choice says which question it belongs to."""
    message = juice.missing_choice(question)
    return serializers.ChoiceField(
        choices=SIDES,
        error_messages={"required": message, "invalid_choice": message, "null": message},
    )


class JudgmentInputSerializer(serializers.Serializer[Any]):
    """Every submit validates through this: see `get_fields`."""

    token = serializers.UUIDField()
    quality = _side_choice("quality")
    quality_reasons = serializers.ListField(
        child=serializers.CharField(max_length=50), max_length=10, required=False, default=list
    )
    faithfulness = _side_choice("faithfulness")
    faithfulness_reasons = serializers.ListField(
        child=serializers.CharField(max_length=50), max_length=10, required=False, default=list
    )
    time_spent_ms = serializers.IntegerField(min_value=0, max_value=86_400_000, default=0)
    watch_ms = serializers.IntegerField(min_value=0, max_value=86_400_000, default=0)
    replays = serializers.IntegerField(min_value=0, max_value=100_000, default=0)
    seeks = serializers.IntegerField(min_value=0, max_value=100_000, default=0)
    played_through = serializers.BooleanField(default=False)

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        """Shallow copies of the declared fields. DRF deep-copies them for every instance,
        rebuilding each field through its __init__: a tenth of a submit's CPU. A shallow copy
        is enough here: binding sets each copy's own name and parent, and validating changes
        no field (the list fields' shared child included)."""
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}


class SideSerializer(serializers.Serializer[Any]):
    video = serializers.CharField()
    poster = serializers.CharField()


class ProgressSerializer(serializers.Serializer[Any]):
    done = serializers.IntegerField()
    total = serializers.IntegerField()


class TaskSerializer(serializers.Serializer[Any]):
    """The payload of POST /api/studies/<slug>/next/ (built by selectors.task_payload)."""

    token = serializers.CharField()
    prompt = serializers.CharField()
    left = SideSerializer()
    right = SideSerializer()
    progress = ProgressSerializer()
    allow_ties = serializers.BooleanField()
    fps = serializers.IntegerField()
    min_watch_ms = serializers.IntegerField()
    break_every = serializers.IntegerField()


def _side(choice: str, left_is_a: bool) -> str:
    if choice == Judgment.Choice.TIE:
        return "tie"
    return "left" if (choice == Judgment.Choice.A) == left_is_a else "right"


class RaterJudgmentSerializer(serializers.ModelSerializer[Any]):
    """A rater's own judgment in the terms they gave it (left/right): A/B would unblind."""

    token = serializers.UUIDField(source="assignment.token")
    quality = serializers.SerializerMethodField()
    faithfulness = serializers.SerializerMethodField()

    class Meta:
        model = Judgment
        fields = [
            "id",
            "token",
            "quality",
            "quality_reasons",
            "faithfulness",
            "faithfulness_reasons",
            "time_spent_ms",
            "watch_ms",
            "created_at",
        ]

    def get_quality(self, obj: Judgment) -> str:
        return _side(obj.quality, obj.assignment.left_is_a)

    def get_faithfulness(self, obj: Judgment) -> str:
        return _side(obj.faithfulness, obj.assignment.left_is_a)


class StaffJudgmentSerializer(serializers.ModelSerializer[Any]):
    """Everything, in A/B terms, for staff."""

    study = serializers.CharField(source="assignment.comparison.study.slug")
    comparison = serializers.IntegerField(source="assignment.comparison_id")
    kind = serializers.CharField(source="assignment.comparison.kind")
    rater = serializers.CharField(source="assignment.rater.get_username")
    left_is_a = serializers.BooleanField(source="assignment.left_is_a")

    class Meta:
        model = Judgment
        fields = [
            "id",
            "study",
            "comparison",
            "kind",
            "rater",
            "left_is_a",
            "quality",
            "quality_reasons",
            "faithfulness",
            "faithfulness_reasons",
            "time_spent_ms",
            "watch_ms",
            "replays",
            "seeks",
            "played_through",
            "gold_correct",
            "mirror_consistent",
            "is_flagged",
            "is_simulated",
            "created_at",
        ]


class ComparisonSerializer(serializers.ModelSerializer[Any]):
    study = serializers.CharField(source="study.slug")
    variant_a = serializers.CharField(source="pair.variant_a.slug")
    variant_b = serializers.CharField(source="pair.variant_b.slug")
    prompt = serializers.CharField(source="prompt.text")
    judgments = serializers.IntegerField(source="judgment_count", read_only=True)

    class Meta:
        model = Comparison
        fields = [
            "id",
            "study",
            "kind",
            "variant_a",
            "variant_b",
            "prompt",
            "is_calibration",
            "assigned_count",
            "judgments",
            "gold_question",
            "mirror_of",
        ]


def study_data(
    *, study: Any, progress: dict[str, int], state: dict[str, Any], staff: bool
) -> dict[str, Any]:
    """Study as a rater sees it; staff also see the set-up (variant names included)."""
    # The study's name is for staff: it often names the designs being compared.
    data: dict[str, Any] = {
        "slug": study.slug,
        "allow_ties": study.allow_ties,
        "progress": progress,
        **state,
    }
    if staff:
        data.update(
            name=study.name,
            mode=study.mode,
            raters_per_pair=study.raters_per_pair,
            tasks_per_rater=study.tasks_per_rater,
            gold_rate=study.gold_rate,
            mirror_rate=study.mirror_rate,
            completion_code=study.completion_code,
            screenout_code=study.screenout_code,
            pairs=[
                {"id": p.id, "variant_a": p.variant_a.slug, "variant_b": p.variant_b.slug}
                for p in study.pairs.select_related("variant_a", "variant_b")
            ],
        )
    return data
