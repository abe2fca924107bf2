"""Staff forms for studies: the builder and the bonus rule. They parse; raters.studies decides."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import QuerySet

from generation.models import GenerationBatch, ModelVariant

from . import studies
from .models import Study
from .study_reports import PayRule


class BatchChoice(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        return f"#{obj.pk} {obj.name} ({obj.prompt_set}, {obj.get_status_display().lower()})"


class StudyBuilderForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=100, help_text="Part of every link: /rate/<slug>/.")
    sources = BatchChoice(
        queryset=GenerationBatch.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        help_text="Videos of the same prompt and seed are paired whichever batch they came from.",
    )
    variants = forms.ModelMultipleChoiceField(
        queryset=ModelVariant.objects.order_by("slug", "-version"),
        widget=forms.CheckboxSelectMultiple,
    )
    pairing = forms.ChoiceField(
        choices=studies.Pairing.choices, initial=studies.Pairing.BASELINE, widget=forms.RadioSelect
    )
    baseline = forms.ModelChoiceField(
        queryset=ModelVariant.objects.order_by("slug", "-version"),
        required=False,
        help_text="Each-against-baseline: every other chosen variant is compared with this one.",
    )
    explicit_pairs = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "design-slug:baseline-slug"}),
        help_text="Explicit pairs: one 'a:b' per line, variant slugs (A is the design).",
    )
    raters_per_pair = forms.IntegerField(
        min_value=1, max_value=1000, initial=5, label="Raters per comparison (k)"
    )
    mode = forms.ChoiceField(choices=Study.Mode.choices, initial=Study.Mode.FIXED)
    allow_ties = forms.BooleanField(
        required=False, initial=False, help_text="Off replicates the paper: a forced choice."
    )
    gold_count = forms.IntegerField(min_value=0, max_value=500, initial=8, label="Gold checks")
    gold_rate = forms.FloatField(
        min_value=0, max_value=0.9, initial=0.1, help_text="Share of tasks that are gold."
    )
    mirror_rate = forms.FloatField(
        min_value=0, max_value=0.9, initial=0.05, help_text="Share of repeats with sides swapped."
    )
    require_qualification = forms.BooleanField(
        required=False, initial=True, label="Qualification quiz"
    )
    min_watch_ms = forms.IntegerField(
        min_value=0, max_value=600_000, initial=2000, label="Minimum watch time (ms)"
    )
    tasks_per_rater = forms.IntegerField(
        min_value=0, max_value=100_000, initial=0, help_text="0: until nothing is left."
    )
    external_id_param = forms.RegexField(
        regex=r"^[A-Za-z0-9_]{1,50}$",
        initial="PROLIFIC_PID",
        label="Start-link parameter",
        error_messages={"invalid": "Letters, digits and underscores only."},
    )
    completion_url = forms.URLField(
        required=False,
        assume_scheme="https",
        help_text="Where finished workers go; {code} becomes the completion code.",
    )
    pay_per_hour = forms.DecimalField(
        min_value=0,
        max_digits=8,
        decimal_places=2,
        initial=Decimal("12.00"),
        required=False,
        label="Pay per rater-hour (for the estimate)",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["sources"].queryset = finished_sources()  # type: ignore[attr-defined]

    def clean_explicit_pairs(self) -> list[tuple[str, str]]:
        pairs = []
        for line in self.cleaned_data["explicit_pairs"].splitlines():
            a, colon, b = line.strip().partition(":")
            if not line.strip():
                continue
            if not colon or not a.strip() or not b.strip():
                raise forms.ValidationError(f"Write each pair as a:b, not {line.strip()!r}.")
            pairs.append((a.strip(), b.strip()))
        return pairs

    def design(self) -> studies.StudyDesign:
        """The cleaned form as a design; explicit pairs must name chosen variants."""
        data = self.cleaned_data
        variants = list(data["variants"])
        by_slug = {v.slug: v for v in variants}
        unknown = [s for pair in data["explicit_pairs"] for s in pair if s not in by_slug]
        if unknown:
            raise forms.ValidationError(
                {"explicit_pairs": f"Not among the chosen variants: {', '.join(unknown)}."}
            )
        return studies.StudyDesign(
            name=data["name"],
            slug=data["slug"],
            sources=tuple(data["sources"]),
            variants=tuple(variants),
            pairing=data["pairing"],
            baseline=data["baseline"],
            explicit_pairs=tuple((by_slug[a], by_slug[b]) for a, b in data["explicit_pairs"]),
            raters_per_pair=data["raters_per_pair"],
            mode=data["mode"],
            allow_ties=data["allow_ties"],
            gold_count=data["gold_count"],
            gold_rate=data["gold_rate"],
            mirror_rate=data["mirror_rate"],
            require_qualification=data["require_qualification"],
            min_watch_ms=data["min_watch_ms"],
            tasks_per_rater=data["tasks_per_rater"],
            external_id_param=data["external_id_param"],
            completion_url=data["completion_url"],
        )

    def pay_rate(self) -> float | None:
        """The pay per rater-hour typed for the estimate, if any."""
        value = self.cleaned_data.get("pay_per_hour")
        return None if value is None else float(value)


def finished_sources() -> QuerySet[GenerationBatch]:
    """Batches with at least one finished video, newest first."""
    return (
        GenerationBatch.objects.filter(jobs__video__isnull=False)
        .select_related("prompt_set")
        .distinct()
        .order_by("-created_at")
    )


class PayRuleForm(forms.Form):
    per_task = forms.DecimalField(
        min_value=0, max_digits=8, decimal_places=2, initial=Decimal("0.00"), required=False
    )
    bonus = forms.DecimalField(
        min_value=0, max_digits=8, decimal_places=2, initial=Decimal("0.00"), required=False
    )
    min_gold_accuracy = forms.FloatField(
        min_value=0, max_value=1, initial=0.8, required=False, label="Minimum gold accuracy"
    )

    def rule(self) -> PayRule:
        """The rule as typed; the defaults for anything missing or invalid."""
        data = self.cleaned_data if self.is_valid() else {}
        accuracy = data.get("min_gold_accuracy")
        return PayRule(
            per_task=data.get("per_task") or Decimal("0"),
            bonus=data.get("bonus") or Decimal("0"),
            min_gold_accuracy=0.8 if accuracy is None else float(accuracy),
        )
