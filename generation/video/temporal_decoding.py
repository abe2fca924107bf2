"""Temporal decoding: a small 3D convolution that steadies a video's latents before they are
decoded frame by frame (the `temporal_decoding` key of a built-in variant's config).

The autoencoder decodes each frame on its own, so whatever a video model leaves different from
one frame's latent to the next shows on screen, and the built-in models leave a still
background "boiling": measured on held-out prompts, their latents change by 0.21 per frame
in background cells, against 0.06 for real videos' latents
(benchmarks/bench_temporal_decoding.py). The temporal decoder sees each latent with its
neighbouring frames (3×3×3 kernels) and is trained, on the training videos' latents, to take
off noise added to every frame independently: a still region is held still, a moving shape is
left where it is. It is residual and starts as the identity.

It runs on the video model's frames before interpolation, so an interpolated video keeps the
(steadied) frames it was given exactly.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from .config import ConfigError

FOLDER = "temporal-decoder"
WEIGHTS = "model.safetensors"


def build(channels: int = 4, width: int = 48) -> Any:
    import torch

    class TemporalDecoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.channels, self.width = channels, width
            last = torch.nn.Conv3d(width, channels, 3, padding=1)
            torch.nn.init.zeros_(last.weight)  # starts as the identity
            torch.nn.init.zeros_(last.bias)  # type: ignore[arg-type]
            self.net = torch.nn.Sequential(
                torch.nn.Conv3d(channels, width, 3, padding=1),
                torch.nn.SiLU(),
                torch.nn.Conv3d(width, width, 3, padding=1),
                torch.nn.SiLU(),
                torch.nn.Conv3d(width, width, 3, padding=1),
                torch.nn.SiLU(),
                last,
            )

        def forward(self, latents: Any) -> Any:
            """(B, C, T, h, w) scaled latents → the same, steadied."""
            return latents + self.net(latents)

    return TemporalDecoder()


def loss(model: Any, latents: Any, sigma: float, gen: Any) -> Any:
    """One training step's loss on (B, C, T, h, w) clean latents: noise up to `sigma` (a level
    drawn per video), drawn for every frame independently, is what the model takes off."""
    import torch

    b = latents.shape[0]
    level = torch.rand(b, 1, 1, 1, 1, generator=gen, device=latents.device) * sigma
    noise = torch.randn(latents.shape, generator=gen, device=latents.device)
    return torch.nn.functional.mse_loss(model(latents + level * noise), latents)


def architecture(model: Any) -> dict[str, int]:
    """What `build` needs to make the model again (its card keeps it)."""
    return {"channels": model.channels, "width": model.width}


def save_weights(model: Any, folder: Path) -> None:
    from . import checkpoints

    checkpoints.save_weights(model, folder / WEIGHTS)


def save(model: Any, folder: Path, card: dict[str, Any]) -> None:
    """The weights and a card naming the architecture (train_variants' stage writes a fuller
    card through Trainer._finish)."""
    from . import checkpoints

    save_weights(model, folder)
    checkpoints.write_card(folder, {**card, "architecture": architecture(model)})


def check(root: Path) -> dict[str, Any]:
    """The card of the temporal decoder under `root`; ConfigError if there is none."""
    from . import checkpoints

    folder = root / FOLDER
    card = checkpoints.read_card(folder)
    if not (folder / WEIGHTS).is_file() or "architecture" not in card:
        raise ConfigError(
            f"temporal_decoding is on, but no temporal decoder is in {root} "
            "(manage.py train_variants --only temporal-decoder)."
        )
    return card


def load(root: Path, device: str = "cpu") -> Any:
    from . import checkpoints

    card = check(root)
    model = build(**card["architecture"])
    model.load_state_dict(checkpoints.load_weights(root / FOLDER / WEIGHTS))
    return model.to(device).eval()


def version(root: Path) -> str:
    """Names the weights (for caches of rendered videos): a retrained decoder is a new one."""
    path = root / FOLDER / WEIGHTS
    return f"{zlib.crc32(path.read_bytes()):08x}" if path.is_file() else "none"
