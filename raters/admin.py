from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html

from . import selectors, services
from .models import Assignment, Comparison, GoldClip, Judgment, Rater, Study, VariantPair


class VariantPairInline(admin.TabularInline):  # type: ignore[type-arg]
    """Pairs are chosen in the study builder, which builds their comparisons too."""

    model = VariantPair
    extra = 0
    can_delete = False
    readonly_fields = ["variant_a", "variant_b", "comparisons"]
    fields = ["variant_a", "variant_b", "comparisons"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="comparisons")
    def comparisons(self, obj: VariantPair) -> int:
        return obj.comparisons.filter(kind=Comparison.Kind.REAL).count()


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    # A completion link typed without a scheme is an https one (Django 6's default).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = [
        "name",
        "slug",
        "state",
        "mode",
        "comparison_count",
        "raters_per_pair",
        "allow_ties",
        "gold_rate",
    ]
    list_filter = ["mode", "is_active"]
    # What decides the comparisons (sources, pairs) and the links (slug) is set in the study
    # builder, which builds the comparisons with it; pausing and closing are on the study page.
    readonly_fields = ["slug", "batches", "is_active", "deactivated_at", "closed_at", "staff_page"]
    inlines = [VariantPairInline]
    actions = ["build_gold", "expire_stale", "recount"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "staff_page",
                    "slug",
                    "batches",
                    "is_active",
                    "deactivated_at",
                    "closed_at",
                    "mode",
                    "raters_per_pair",
                ]
            },
        ),
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

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        """A study is made in the builder, which previews it and builds its comparisons."""
        self.message_user(
            request,
            "Studies are built in the study builder: it picks the sources, variants and pairs, "
            "shows what the study will take, and builds its comparisons when you publish.",
            messages.INFO,
        )
        return redirect("studies:new")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        study = self.get_object(request, object_id)
        if study is not None and not study.comparisons.filter(kind=Comparison.Kind.REAL).exists():
            self.message_user(
                request,
                "This study has 0 comparisons, so raters get nothing to rate. Build a study with "
                "the study builder (Staff → Studies → Build a new study).",
                messages.WARNING,
            )
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="state")
    def state(self, obj: Study) -> str:
        return obj.state

    @admin.display(description="comparisons")
    def comparison_count(self, obj: Study) -> int:
        return obj.comparisons.filter(kind=Comparison.Kind.REAL).count()

    @admin.display(description="staff page")
    def staff_page(self, obj: Study) -> str:
        url = reverse("studies:detail", args=[obj.slug])
        return format_html('<a href="{}">Progress, pause, close, raters and pay</a>', url)

    @admin.action(description="Build 8 gold comparisons from real videos")
    def build_gold(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        for study in queryset:
            made = services.build_gold_comparisons(study=study, count=8)
            if made:
                self.message_user(request, f"{study.slug}: {made} gold comparisons built.")
            else:
                self.message_user(
                    request,
                    f"{study.slug}: no gold comparisons built, because the study has no real "
                    "comparisons to degrade. Build the study in the study builder.",
                    messages.WARNING,
                )

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
    """Read-only: a pair added here would have no comparisons (the builder makes them)."""

    list_display = ["study", "variant_a", "variant_b"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
