from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from . import selectors, services
from .models import Assignment, Comparison, GoldClip, Judgment, Rater, Study, VariantPair


class VariantPairInline(admin.TabularInline):  # type: ignore[type-arg]
    model = VariantPair
    extra = 0


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    # A completion link typed without a scheme is an https one (Django 6's default).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = [
        "name",
        "slug",
        "mode",
        "batch",
        "raters_per_pair",
        "allow_ties",
        "gold_rate",
        "is_active",
    ]
    list_filter = ["mode", "is_active"]
    inlines = [VariantPairInline]
    actions = ["build_gold", "expire_stale", "recount"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "batch", "is_active", "mode", "raters_per_pair"]}),
        ("Rating", {"fields": ["allow_ties", "allow_repeat_prompts", "tasks_per_rater"]}),
        (
            "Quality control",
            {
                "fields": [
                    "require_qualification",
                    "gold_rate",
                    "mirror_rate",
                    "gold_accuracy_threshold",
                    "gold_min_answers",
                    "min_watch_ms",
                    "assignment_timeout_minutes",
                    "break_every",
                ]
            },
        ),
        ("Adaptive", {"fields": ["calibration_fraction", "target_ci_width"]}),
        (
            "Crowd",
            {
                "fields": [
                    "external_id_param",
                    "completion_code",
                    "min_tasks_for_code",
                    "screenout_code",
                    "completion_url",
                ]
            },
        ),
    ]

    @admin.action(description="Build 8 gold comparisons from real videos")
    def build_gold(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        made = sum(services.build_gold_comparisons(study=s, count=8) for s in queryset)
        self.message_user(request, f"{made} gold comparisons built.", messages.SUCCESS)

    @admin.action(description="Return abandoned assignments to the pool")
    def expire_stale(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        expired = sum(services.expire_stale_assignments(study=s) for s in queryset)
        self.message_user(request, f"{expired} assignments expired.", messages.SUCCESS)

    @admin.action(description="Recount assigned slots")
    def recount(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        for study in queryset:
            services.recount_assignments(study=study)
        self.message_user(request, "Slots recounted.", messages.SUCCESS)


@admin.register(Rater)
class RaterAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "__str__",
        "user",
        "external_id",
        "is_qualified",
        "gold_accuracy",
        "is_flagged",
        "flagged_reason",
        "is_simulated",
    ]
    list_filter = ["is_flagged", "is_simulated"]
    search_fields = ["external_id", "user__username"]
    readonly_fields = ["flagged_reason", "flagged_at", "qualified_at", "quiz_attempts"]
    actions = ["reinstate", "qualify"]

    @admin.display(boolean=True, description="qualified")
    def is_qualified(self, obj: Rater) -> bool:
        return obj.is_qualified

    @admin.display(description="gold accuracy")
    def gold_accuracy(self, obj: Rater) -> str:
        stats = selectors.gold_stats(study=None, user=obj.user)
        return f"{stats.correct}/{stats.total}" if stats.total else "–"

    @admin.action(description="Reinstate (unflag judgments, recount slots)")
    def reinstate(self, request: HttpRequest, queryset: QuerySet[Rater]) -> None:
        for rater in queryset:
            services.reinstate_rater(rater=rater)
        self.message_user(request, f"{queryset.count()} raters reinstated.", messages.SUCCESS)

    @admin.action(description="Mark as qualified (skip the quiz)")
    def qualify(self, request: HttpRequest, queryset: QuerySet[Rater]) -> None:
        for rater in queryset:
            services.qualify_rater(user=rater.user)
        self.message_user(request, f"{queryset.count()} raters qualified.", messages.SUCCESS)


@admin.register(VariantPair)
class VariantPairAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["study", "variant_a", "variant_b"]


@admin.register(GoldClip)
class GoldClipAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["id", "degradation", "source", "created_at"]
    list_filter = ["degradation"]
    raw_id_fields = ["source"]


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["id", "study", "kind", "pair", "prompt", "is_calibration", "assigned_count"]
    list_filter = ["study", "kind", "is_calibration"]
    raw_id_fields = ["prompt", "video_a", "video_b", "pair", "gold_clip", "mirror_of"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["id", "comparison", "rater", "left_is_a", "status", "expires_at", "created_at"]
    list_filter = ["status"]
    raw_id_fields = ["comparison", "rater"]


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "id",
        "assignment",
        "quality",
        "faithfulness",
        "watch_ms",
        "gold_correct",
        "mirror_consistent",
        "is_flagged",
        "is_simulated",
        "created_at",
    ]
    list_filter = ["is_flagged", "is_simulated", "assignment__comparison__kind"]
    raw_id_fields = ["assignment"]
