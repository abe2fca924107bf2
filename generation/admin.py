from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from . import selectors, services
from .forms import ModelVariantAdminForm
from .models import GenerationBatch, GenerationJob, ModelVariant, Prompt, PromptSet, Video


@admin.register(ModelVariant)
class ModelVariantAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = ModelVariantAdminForm
    list_display = ["name", "slug", "version", "kind", "used", "created_at"]
    search_fields = ["name", "slug"]
    actions = ["launch_batch", "new_version"]

    @admin.display(boolean=True, description="used in a batch")
    def used(self, obj: ModelVariant) -> bool:
        return selectors.variant_is_used(variant=obj)

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        # Used variants are frozen: a change is a new version (action "Copy as a new version").
        if obj is not None and selectors.variant_is_used(variant=obj):
            return ["slug", "version", "config"]
        return []

    @admin.display(description="kind")
    def kind(self, obj: ModelVariant) -> str:
        return str(obj.config.get("kind", "emu")) if isinstance(obj.config, dict) else "?"

    @admin.action(description="Launch a batch with the selected variants")
    def launch_batch(self, request: HttpRequest, queryset: QuerySet[ModelVariant]):  # type: ignore[no-untyped-def]
        query = urlencode([("variants", v.pk) for v in queryset])
        return HttpResponseRedirect(f"{reverse('generation:launch')}?{query}")

    @admin.action(description="Copy as a new version (to edit a used variant)")
    def new_version(self, request: HttpRequest, queryset: QuerySet[ModelVariant]) -> None:
        for variant in queryset:
            copy = services.create_variant_version(variant=variant)
            self.message_user(request, f"Created {copy}: edit it before its first batch.")


class PromptInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Prompt
    extra = 0


@admin.register(PromptSet)
class PromptSetAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["name", "slug", "source_file", "created_at"]
    inlines = [PromptInline]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["external_id", "text", "category", "prompt_set"]
    list_filter = ["prompt_set"]
    search_fields = ["text"]


@admin.register(GenerationBatch)
class GenerationBatchAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Adding a batch here launches it: its jobs are created and sent to the `gpu` queue."""

    list_display = ["name", "prompt_set", "seeds", "status", "progress", "watch", "created_at"]
    filter_horizontal = ["variants"]
    readonly_fields = ["status", "created_by", "finished_at"]
    actions = ["resume", "retry_failed", "cancel"]

    @admin.display(description="done / total")
    def progress(self, obj: GenerationBatch) -> str:
        counts = selectors.batch_progress(batch=obj)
        return f"{counts['done']} / {counts['total']} ({counts['failed']} failed)"

    @admin.display(description="live")
    def watch(self, obj: GenerationBatch) -> str:
        return format_html('<a href="{}">progress</a>', reverse("generation:batch", args=[obj.pk]))

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):  # type: ignore[no-untyped-def]
        super().save_related(request, form, formsets, change)
        if not change:
            queued = services.launch_batch(batch=form.instance)
            self.message_user(request, f"Launched {queued} generation jobs.")

    @admin.action(description="Resume (send unfinished and cancelled jobs again)")
    def resume(self, request: HttpRequest, queryset: QuerySet[GenerationBatch]) -> None:
        n = sum(services.resume_batch(batch=batch) for batch in queryset)
        self.message_user(request, f"Sent {n} jobs to the workers.")

    @admin.action(description="Retry failed jobs")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[GenerationBatch]) -> None:
        n = sum(services.retry_failed(batch=batch) for batch in queryset)
        self.message_user(request, f"Re-queued {n} failed jobs.")

    @admin.action(description="Cancel unfinished jobs")
    def cancel(self, request: HttpRequest, queryset: QuerySet[GenerationBatch]) -> None:
        n = sum(services.cancel_batch(batch=batch) for batch in queryset)
        self.message_user(request, f"Cancelled {n} jobs.", level=messages.WARNING)


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["id", "batch", "variant", "prompt", "seed", "status", "attempts", "worker"]
    list_filter = ["status", "batch", "variant"]
    raw_id_fields = ["batch", "variant", "prompt"]


@admin.register(Video)
class VideoAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["id", "job", "frames", "fps", "width", "height", "seconds_spent", "thumb"]
    raw_id_fields = ["job"]

    @admin.display(description="poster")
    def thumb(self, obj: Video) -> str:
        if not obj.poster:
            return ""
        return format_html('<img src="{}" width="64" height="64">', obj.poster.url)
