"""Staff forms: registering a variant (any kind), and launching a batch (variants, a prompt set
existing or uploaded, seeds and chunking)."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from . import selectors, services
from .models import ModelVariant, PromptSet
from .prompt_files import PromptFileError, parse_prompt_file
from .services import MAX_CHUNK_SIZE

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_PK = 2**63 - 1  # a bigger number would reach the database and fail there, not here


def is_pk(value: object) -> bool:
    return bool(re.fullmatch(r"[0-9]{1,19}", str(value))) and 0 < int(str(value)) <= MAX_PK


class VariantsField(forms.ModelMultipleChoiceField):  # type: ignore[type-arg]
    def clean(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            for pk in value:
                if not is_pk(pk):
                    raise ValidationError(f"{str(pk)[:40]!r} is not one of the variants.")
        return super().clean(value)


class PromptSetField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def to_python(self, value: Any) -> Any:
        if value not in self.empty_values and not is_pk(value):
            raise ValidationError("Select one of the prompt sets.")
        return super().to_python(value)


class LaunchForm(forms.Form):
    name = forms.CharField(max_length=200)
    variants = VariantsField(
        queryset=selectors.launchable_variants(), widget=forms.CheckboxSelectMultiple
    )
    prompt_set = PromptSetField(
        queryset=PromptSet.objects.all(), required=False, help_text="Or upload a file below."
    )
    prompt_file = forms.FileField(
        required=False,
        help_text=".txt (one prompt per line) or .csv (a 'prompt' column; optional id, category).",
    )
    seeds = forms.IntegerField(min_value=1, max_value=100, initial=1)
    chunk_size = forms.IntegerField(
        min_value=1, max_value=MAX_CHUNK_SIZE, initial=8, help_text="Jobs per GPU task."
    )
    sample_batch = forms.IntegerField(
        min_value=1,
        max_value=MAX_CHUNK_SIZE,
        initial=4,
        help_text="Videos sampled together (on a GPU, up to the chunk size: larger is faster).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Query at render time, not import time, so new variants show up.
        variants = self.fields["variants"]
        assert isinstance(variants, VariantsField)
        variants.queryset = selectors.launchable_variants()

    def clean_prompt_file(self) -> Any:
        upload = self.cleaned_data.get("prompt_file")
        if upload is None:
            return None
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError("The file is over 5 MB.")
        data = upload.read()
        try:
            parse_prompt_file(filename=upload.name, data=data)
        except PromptFileError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return {"filename": upload.name, "data": data}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        has_set = cleaned.get("prompt_set") is not None
        has_file = cleaned.get("prompt_file") is not None
        if not self.errors.get("prompt_file") and has_set == has_file:
            raise forms.ValidationError(
                "Choose an existing prompt set or upload a file (not both)."
            )
        return cleaned


CONFIG_EXAMPLE = (
    '{"kind": "diffusers", "path": "/models/my-t2v", "num_frames": 49, "height": 480, '
    '"width": 720, "steps": 50, "guidance_scale": 6.0, "fps": 8, "dtype": "bfloat16"}'
)


def clean_config_field(value: Any) -> Any:
    """A config checked as a worker would check it; its problem becomes the field's error."""
    try:
        return services.check_variant_config(value).to_dict()
    except ValidationError as exc:
        raise forms.ValidationError(" ".join(exc.messages)) from exc


class VariantForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=100, required=False, help_text="Default: made from the name.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    config = forms.JSONField(
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text=(
            "A saved diffusers pipeline, e.g. " + CONFIG_EXAMPLE + ", or the built-in family, "
            'e.g. {"kind": "emu", "mode": "direct"}. Checked now against the folder it names.'
        ),
    )

    def clean_config(self) -> Any:
        return clean_config_field(self.cleaned_data["config"])


class ModelVariantAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    """The Django admin's variant form: a config that a worker could not use is a form error."""

    class Meta:
        model = ModelVariant
        fields = ["name", "slug", "version", "description", "config"]

    def clean_config(self) -> Any:
        return clean_config_field(self.cleaned_data.get("config"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.instance.pk is not None and "config" in cleaned:
            try:
                services.check_variant_editable(variant=self.instance, config=cleaned["config"])
            except ValidationError as exc:
                self.add_error("config", " ".join(exc.messages))
        return cleaned


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> Any:
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)]


class ImportForm(forms.Form):
    variant = forms.ModelChoiceField(
        queryset=ModelVariant.objects.none(),
        help_text='An imported variant (kind "imported"): register one on the variants page.',
    )
    prompt_set = PromptSetField(queryset=PromptSet.objects.all())
    upload = MultipleFileField(
        help_text="A zip of {prompt}-{index}.mp4 or {prompt_id}.mp4 files (or of a manifest.csv "
        "with its files), or a manifest.csv with its video files selected together.",
    )
    create_prompts = forms.BooleanField(
        required=False, help_text="Add prompts that the set does not have yet."
    )
    skip_bad = forms.BooleanField(
        required=False, help_text="Import the accepted files even if some are refused."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        variant = self.fields["variant"]
        assert isinstance(variant, forms.ModelChoiceField)
        variant.queryset = selectors.imported_variants()
