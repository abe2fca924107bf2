"""Automatic metrics on the procedural domain, from a small video classifier trained on it.

- Faithfulness: the classifier reads colour, shape, motion (and background) from a video and
  compares them with what the prompt names; `faithfulness` is the share of colour, shape and
  motion it got right.
- Fréchet distance (FVD-style): torchmetrics' `FrechetInceptionDistance` with the classifier's
  penultimate layer as the feature network, generated videos against real videos rendered for
  the same prompts.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .data import BACKGROUND_NAMES, COLOUR_NAMES, MOTIONS, SHAPES, VideoSet, parse_prompt

CLIP_FRAMES = 8
CLIP_SIZE = 32
HEADS = {
    "colour": len(COLOUR_NAMES),
    "shape": len(SHAPES),
    "motion": len(MOTIONS),
    "background": len(BACKGROUND_NAMES),
}


class VideoClassifier(torch.nn.Module):
    """A 3D-conv net: (N, T, H, W, 3) uint8 videos → features and attribute logits.

    Videos of another size or length are resampled to 8 frames of 32×32 first, so interpolated
    (29-frame) videos are judged on the same footing.
    """

    num_features = 32

    def __init__(self) -> None:
        from torch import nn

        super().__init__()
        # Two convolutions at full resolution before any pooling, and a global *max* pool: a
        # shape's corners and edges survive to the features (with an early pool and a global
        # average, shape stayed near chance even on real videos).
        self.body = nn.Sequential(
            nn.Conv3d(3, 24, 3, padding=1),
            nn.GroupNorm(4, 24),
            nn.SiLU(),
            nn.Conv3d(24, 32, 3, padding=1),
            nn.GroupNorm(4, 32),
            nn.SiLU(),
            nn.MaxPool3d((1, 2, 2)),
            nn.Conv3d(32, 48, 3, padding=1),
            nn.GroupNorm(4, 48),
            nn.SiLU(),
            nn.MaxPool3d((2, 2, 2)),
            nn.Conv3d(48, 64, 3, padding=1),
            nn.GroupNorm(4, 64),
            nn.SiLU(),
            nn.AdaptiveMaxPool3d(1),
            nn.Flatten(),
            nn.Linear(64, self.num_features),
            nn.SiLU(),
        )
        self.heads = nn.ModuleDict({k: nn.Linear(self.num_features, n) for k, n in HEADS.items()})
        self._dummy = torch.nn.Parameter(torch.zeros(0), requires_grad=False)

    def prepare(self, videos: Any) -> Any:
        import torch.nn.functional as F

        x = torch.as_tensor(np.asarray(videos)) if not torch.is_tensor(videos) else videos
        x = x.to(self._dummy.device)
        if x.dtype == torch.uint8:
            x = x.float() / 127.5 - 1.0
        x = x.permute(0, 4, 1, 2, 3)  # (N, 3, T, H, W)
        if x.shape[2] != CLIP_FRAMES:
            idx = torch.linspace(0, x.shape[2] - 1, CLIP_FRAMES).round().long().to(x.device)
            x = x[:, :, idx]
        if x.shape[-1] != CLIP_SIZE or x.shape[-2] != CLIP_SIZE:
            x = F.interpolate(x, size=(CLIP_FRAMES, CLIP_SIZE, CLIP_SIZE), mode="area")
        return x

    def forward(self, videos: Any) -> Any:
        """Features (N, 32): the feature network for torchmetrics' Fréchet distance."""
        return self.body(self.prepare(videos))

    def logits(self, videos: Any) -> dict[str, Any]:
        features = self.forward(videos)
        return {k: head(features) for k, head in self.heads.items()}


@dataclass(frozen=True)
class VideoScore:
    faithfulness: float | None
    color_ok: bool | None
    shape_ok: bool | None
    motion_ok: bool | None
    background_ok: bool | None
    predicted: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "faithfulness": self.faithfulness,
            "color_ok": self.color_ok,
            "shape_ok": self.shape_ok,
            "motion_ok": self.motion_ok,
            "background_ok": self.background_ok,
            "predicted": self.predicted,
        }


def train_classifier(
    videos: VideoSet,
    *,
    steps: int,
    seed: int,
    device: str = "cpu",
    batch: int = 32,
    progress: bool = False,
) -> tuple[VideoClassifier, list[float]]:
    import torch
    from tqdm.auto import tqdm

    from .data import make_video_set

    torch.manual_seed(seed)
    model = VideoClassifier().to(device).train()
    # The judge may see held-out combinations (it is not the generator); more variety helps it.
    _, frames, size = videos.videos.shape[:3]
    extra = make_video_set(
        max(8, len(videos.videos) // 4), seed=seed + 1, split="heldout", size=size, frames=frames
    )
    data = np.concatenate([videos.videos, extra.videos])
    labels = torch.from_numpy(np.concatenate([videos.labels, extra.labels])).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    losses: list[float] = []
    bar = tqdm(range(steps), desc="classifier", disable=not progress)
    for step in bar:
        gen = torch.Generator().manual_seed(seed * 100_003 + step)
        idx = torch.randint(len(data), (batch,), generator=gen)
        logits = model.logits(data[idx.numpy()])
        loss = sum(
            torch.nn.functional.cross_entropy(logits[k], labels[idx.to(device), i])
            for i, k in enumerate(HEADS)
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[union-attr]
        opt.step()
        losses.append(float(loss.detach()))  # type: ignore[union-attr]
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    return model.eval(), losses


def save_classifier(model: VideoClassifier, folder: Path, card: dict[str, Any]) -> None:
    from . import checkpoints

    checkpoints.save_weights(model, folder / "model.safetensors")
    (folder / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")


def load_classifier(folder: Path, device: str = "cpu") -> tuple[VideoClassifier, str]:
    """The classifier and its version string (checkpoint name + weights checksum)."""
    from . import checkpoints

    path = folder / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"no classifier at {path}; run manage.py train_variants")
    model = VideoClassifier()
    model.load_state_dict(checkpoints.load_weights(path))
    version = f"{folder.name}-{zlib.crc32(path.read_bytes()):08x}"
    return model.to(device).eval(), version


def predict(model: VideoClassifier, videos: Any, batch: int = 64) -> dict[str, np.ndarray]:
    import torch

    out: dict[str, list[np.ndarray]] = {k: [] for k in HEADS}
    with torch.inference_mode():
        for i in range(0, len(videos), batch):
            logits = model.logits(videos[i : i + batch])
            for k, v in logits.items():
                out[k].append(v.argmax(-1).cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def score_videos(
    model: VideoClassifier, videos: Sequence[np.ndarray], prompts: Sequence[str]
) -> list[VideoScore]:
    """Attribute accuracy of each video against its own prompt."""
    if len(videos) != len(prompts):
        raise ValueError("videos and prompts must have the same length")
    if not videos:
        return []
    preds = _predict_each(model, videos)
    scores = []
    names = {
        "colour": COLOUR_NAMES,
        "shape": SHAPES,
        "motion": MOTIONS,
        "background": BACKGROUND_NAMES,
    }
    for i, prompt in enumerate(prompts):
        parsed = parse_prompt(prompt)
        wanted = {
            "colour": parsed.colour,
            "shape": parsed.shape,
            "motion": parsed.motion,
            "background": parsed.background,
        }
        ok = {k: (None if v is None else bool(preds[k][i] == v)) for k, v in wanted.items()}
        judged = [bool(ok[k]) for k in ("colour", "shape", "motion") if ok[k] is not None]
        scores.append(
            VideoScore(
                faithfulness=sum(judged) / len(judged) if judged else None,
                color_ok=ok["colour"],
                shape_ok=ok["shape"],
                motion_ok=ok["motion"],
                background_ok=ok["background"],
                predicted={k: names[k][int(preds[k][i])] for k in HEADS},
            )
        )
    return scores


def _predict_each(model: VideoClassifier, videos: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    # Videos of different lengths cannot be stacked; group them by shape.
    out = {k: np.zeros(len(videos), dtype=np.int64) for k in HEADS}
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, v in enumerate(videos):
        by_shape.setdefault(tuple(v.shape), []).append(i)
    for indices in by_shape.values():
        got = predict(model, np.stack([videos[i] for i in indices]))
        for k in HEADS:
            out[k][indices] = got[k]
    return out


def frechet_distance(
    model: VideoClassifier,
    generated: Sequence[np.ndarray] | np.ndarray,
    reference: Sequence[np.ndarray] | np.ndarray,
) -> float:
    """Fréchet distance between classifier features of generated and real videos."""
    import torch
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=model, normalize=False)
    with torch.inference_mode():
        for videos, real in ((reference, True), (generated, False)):
            for i in range(0, len(videos), 64):
                chunk = [np.asarray(v) for v in videos[i : i + 64]]
                if len({v.shape for v in chunk}) == 1:
                    metric.update(torch.from_numpy(np.stack(chunk)), real=real)
                else:
                    for v in chunk:
                        metric.update(torch.from_numpy(v)[None], real=real)
    return float(metric.compute())
