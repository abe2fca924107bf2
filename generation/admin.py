from django.contrib import admin
from django.utils.html import format_html

from . import selectors, services
from .models import GenerationBatch, GenerationJob, ModelVariant, Prompt, PromptSet, Video


@admin.register(ModelVariant)
class ModelVariantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "version", "created_at"]
    search_fields = ["name", "slug"]

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        obj.config = services.check_variant_config(obj.config).to_dict()
        super().save_model(request, obj, form, change)


class PromptInline(admin.TabularInline):
    model = Prompt
    extra = 0


@admin.register(PromptSet)
class PromptSetAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    inlines = [PromptInline]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["external_id", "text", "category", "prompt_set"]
    list_filter = ["prompt_set"]
    search_fields = ["text"]


@admin.register(GenerationBatch)
class GenerationBatchAdmin(admin.ModelAdmin):
    """Adding a batch here launches it: its jobs are created and sent to the `gpu` queue."""

    list_display = ["name", "prompt_set", "seeds", "status", "progress", "created_at"]
    filter_horizontal = ["variants"]
    readonly_fields = ["status", "created_by"]

    @admin.display(description="done / total")
    def progress(self, obj: GenerationBatch) -> str:
        counts = selectors.batch_progress(batch=obj)
        return f"{counts['done']} / {counts['total']} ({counts['failed']} failed)"

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):  # type: ignore[no-untyped-def]
        super().save_related(request, form, formsets, change)
        if not change:
            queued = services.launch_batch(batch=form.instance)
            self.message_user(request, f"Launched {queued} generation jobs.")


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ["id", "batch", "variant", "prompt", "seed", "status", "attempts"]
    list_filter = ["status", "batch", "variant"]
    raw_id_fields = ["batch", "variant", "prompt"]


@admin.register(Video)
class VideoAdmin(admin.ModelAdmin):
    list_display = ["id", "job", "frames", "fps", "width", "height", "seconds_spent", "thumb"]
    raw_id_fields = ["job"]

    @admin.display(description="poster")
    def thumb(self, obj: Video) -> str:
        if not obj.poster:
            return ""
        return format_html('<img src="{}" width="64" height="64">', obj.poster.url)
