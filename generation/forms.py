"""The launch form: variants, a prompt set (existing or uploaded), seeds and chunking."""

from __future__ import annotations

from typing import Any

from django import forms

from . import selectors
from .models import PromptSet
from .prompt_files import PromptFileError, parse_prompt_file

MAX_UPLOAD_BYTES = 5 * 1024 * 1024


class LaunchForm(forms.Form):
    name = forms.CharField(max_length=200)
    variants = forms.ModelMultipleChoiceField(
        queryset=selectors.launchable_variants(), widget=forms.CheckboxSelectMultiple
    )
    prompt_set = forms.ModelChoiceField(
        queryset=PromptSet.objects.all(), required=False, help_text="Or upload a file below."
    )
    prompt_file = forms.FileField(
        required=False,
        help_text=".txt (one prompt per line) or .csv (a 'prompt' column; optional id, category).",
    )
    seeds = forms.IntegerField(min_value=1, max_value=100, initial=1)
    chunk_size = forms.IntegerField(
        min_value=1, max_value=256, initial=8, help_text="Jobs per GPU task."
    )
    sample_batch = forms.IntegerField(
        min_value=1, max_value=256, initial=4, help_text="Videos sampled together."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Query at render time, not import time, so new variants show up.
        variants = self.fields["variants"]
        assert isinstance(variants, forms.ModelMultipleChoiceField)
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
