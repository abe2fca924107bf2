from django.contrib import admin

from .models import Assignment, Comparison, Judgment, Study, VariantPair


class VariantPairInline(admin.TabularInline):
    model = VariantPair
    extra = 0


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "batch", "raters_per_pair", "allow_ties", "is_active"]
    inlines = [VariantPairInline]


@admin.register(VariantPair)
class VariantPairAdmin(admin.ModelAdmin):
    list_display = ["study", "variant_a", "variant_b"]


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ["id", "study", "pair", "prompt"]
    list_filter = ["study"]
    raw_id_fields = ["prompt", "video_a", "video_b", "pair"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "comparison", "rater", "left_is_a", "status", "created_at"]
    list_filter = ["status"]
    raw_id_fields = ["comparison", "rater"]


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ["id", "assignment", "quality", "faithfulness", "time_spent_ms", "created_at"]
    raw_id_fields = ["assignment"]
