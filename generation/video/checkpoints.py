"""Where a variant's weights come from, and how checkpoints are written and read.

A checkpoint is a diffusers-style folder: `unet/` (the video `UNet3DConditionModel`), `vae/`
(`AutoencoderKL`), optional `scheduler/` and `interpolation_unet/`, and `card.json` (what was
trained, on what data, for how long, with which final losses). Shipped checkpoints live in
`generation/checkpoints/` (override with `JUICE_CHECKPOINT_DIR`); a shipped folder may name the
shared autoencoder in its card instead of carrying its own `vae/`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import SCHEDULES, ConfigError, VariantConfig

PACKAGE_CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
AUTOENCODER = "autoencoder"
INTERPOLATION = "interpolation"
CLASSIFIER = "classifier"


def checkpoint_dir(override: str | Path | None = None) -> Path:
    if override is not None:
        return Path(override)
    env = os.environ.get("JUICE_CHECKPOINT_DIR")
    return Path(env) if env else PACKAGE_CHECKPOINT_DIR


def video_checkpoint_name(
    *, mode: str, schedule: str, spatial: str, multistage: bool, hq_finetune: bool
) -> str:
    name = f"video-{mode}-{schedule}-{spatial}"
    if multistage:
        name += "-multistage"
    if hq_finetune:
        name += "-hq"
    return name


def t2i_checkpoint_name(schedule: str) -> str:
    return f"t2i-{schedule}"


def recipe_checkpoint_name(config: VariantConfig) -> str:
    """The shipped checkpoint folder of the config's recipe (its `checkpoint` aside)."""
    return video_checkpoint_name(
        mode=config.mode,
        schedule=config.schedule,
        spatial=config.spatial,
        multistage=config.multistage,
        hq_finetune=config.hq_finetune,
    )


def resolve_video_folder(config: VariantConfig, root: Path) -> Path:
    """The folder a config loads: its own `checkpoint`, or the shipped one matching its recipe."""
    if config.checkpoint:
        path = Path(config.checkpoint)
        if not path.is_absolute():
            if "/" in config.checkpoint or config.checkpoint.startswith("."):
                raise ConfigError(
                    "checkpoint must be a shipped checkpoint name or an absolute local folder."
                )
            path = root / config.checkpoint
        if not (path / "unet" / "config.json").is_file():
            raise ConfigError(f"checkpoint {config.checkpoint!r} has no unet/ folder at {path}.")
        return path
    name = recipe_checkpoint_name(config)
    path = root / name
    if not (path / "unet" / "config.json").is_file():
        shipped = sorted(p.name for p in root.glob("video-*") if (p / "card.json").is_file())
        raise ConfigError(
            f"No trained checkpoint for this recipe ({name}) in {root}. "
            f"Available: {', '.join(shipped) or 'none (run manage.py train_variants)'}."
        )
    return path


@dataclass(frozen=True)
class Interpolator:
    """Where a variant's interpolation U-Net is and how it must be sampled (from its card)."""

    unet_folder: Path  # a diffusers folder, or a compact one loaded with `load_video_unet`
    compact: bool
    schedule: str
    prediction_type: str
    in_frames: int | None
    # SDEdit strength of the in-between frames' start (card "sampling": {"strength": s}); 1
    # (pure noise) where the card does not say. pipeline.py documents the sampler.
    strength: float = 1.0
    # Its text guidance weight (card "sampling": {"guidance_text": w}); None: the variant's.
    guidance_text: float | None = None


def interpolation_sampling_card(
    strength: float, guidance_text: float | None = None
) -> dict[str, object]:
    """What an interpolator's card records about how its sampler keeps and starts frames."""
    card: dict[str, object] = {
        "key_frames": "replaced",
        "start": "blend of neighbouring given frames",
        "strength": strength,
    }
    if guidance_text is not None:
        card["guidance_text"] = guidance_text
    return card


def interpolation_scheduler_card(schedule: str) -> dict[str, str]:
    """What an interpolator's card records about how it was trained (and must be sampled)."""
    from .schedules import scheduler_kwargs

    return {"schedule": schedule, "prediction_type": scheduler_kwargs(schedule)["prediction_type"]}


def find_interpolator(config: VariantConfig, folder: Path, root: Path) -> Interpolator:
    """The interpolator a variant uses: the folder's own `interpolation_unet/`, else the shipped
    `interpolation` checkpoint. Its card must name the schedule and prediction type it was
    trained with, and they must be what the config's own schedule is: the interpolator makes
    three frames in four of the video, so a `standard` variant interpolated by a zero-SNR model
    would not be the variant its name says (and stepping a v-prediction model as an epsilon
    one, as its scheduler would, gives noise). Raises ConfigError with the reason."""
    from .schedules import scheduler_kwargs

    own = folder / "interpolation_unet"
    if (own / "config.json").is_file():
        card, unet_folder, compact = read_card(own), own, False
    else:
        shipped = root / INTERPOLATION
        if not (shipped / "card.json").is_file():
            raise ConfigError(f"interpolation is on, but no interpolation checkpoint is in {root}.")
        card, unet_folder, compact = read_card(shipped), shipped, True
    scheduler = card.get("scheduler")
    if not isinstance(scheduler, dict) or scheduler.get("schedule") not in SCHEDULES:
        raise ConfigError(
            f"The interpolation checkpoint {unet_folder} does not say in its card.json which "
            'schedule it was trained with ("scheduler": {"schedule": ..., "prediction_type": '
            "...}), so it cannot be sampled safely."
        )
    schedule = str(scheduler["schedule"])
    expected = scheduler_kwargs(schedule)["prediction_type"]
    if scheduler.get("prediction_type") != expected:
        raise ConfigError(
            f"The interpolation checkpoint {unet_folder} says schedule {schedule} with "
            f"prediction type {scheduler.get('prediction_type')!r}; that schedule is trained "
            f"with {expected}."
        )
    if schedule != config.schedule:
        raise ConfigError(
            f"interpolation is on, but the interpolator was trained with the {schedule} "
            f"schedule ({expected}) and this variant's schedule is {config.schedule}: its "
            "interpolated frames would come from another schedule. Turn interpolation off, or "
            f"train an interpolator for {config.schedule}."
        )
    layout = card.get("layout") or {}
    in_frames = layout.get("in_frames")
    if in_frames is not None and int(in_frames) != config.frames:
        raise ConfigError(
            f"interpolation is on, but the interpolator was trained on {in_frames} given frames "
            f"and this variant makes {config.frames}."
        )
    sampling = card.get("sampling") or {}
    strength = sampling.get("strength", 1.0) if isinstance(sampling, dict) else None
    if (
        isinstance(strength, bool)
        or not isinstance(strength, int | float)
        or not 0.0 <= strength <= 1.0
    ):
        raise ConfigError(
            f"The interpolation checkpoint {unet_folder} says sampling strength {strength!r} "
            "in its card.json; it must be a number from 0 to 1."
        )
    guidance = sampling.get("guidance_text") if isinstance(sampling, dict) else None
    if guidance is not None and (
        isinstance(guidance, bool) or not isinstance(guidance, int | float) or guidance < 0
    ):
        raise ConfigError(
            f"The interpolation checkpoint {unet_folder} says text guidance {guidance!r} in its "
            "card.json; it must be a number of at least 0."
        )
    return Interpolator(
        unet_folder=unet_folder,
        compact=compact,
        schedule=schedule,
        prediction_type=expected,
        in_frames=None if in_frames is None else int(in_frames),
        strength=float(strength),
        guidance_text=None if guidance is None else float(guidance),
    )


def read_card(folder: Path) -> dict[str, Any]:
    card = folder / "card.json"
    if not card.is_file():
        return {}
    data: dict[str, Any] = json.loads(card.read_text())
    return data


def write_card(folder: Path, card: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "card.json.tmp"
    tmp.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, folder / "card.json")


def save_model(model: Any, folder: Path) -> None:
    """Save a diffusers model as fp16 safetensors (the shipped size) without touching `model`."""
    import copy

    import torch

    half = copy.deepcopy(model)
    for param in half.parameters():
        param.data = param.data.to(torch.float16)
    half.save_pretrained(str(folder), safe_serialization=True)


def save_weights(model: Any, path: Path) -> None:
    """A plain torch module's weights as fp16 safetensors (the shipped size) at `path`."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path))


def load_weights(path: Path) -> dict[str, Any]:
    """What `save_weights` wrote, back in float32."""
    from safetensors.torch import load_file

    return {k: v.float() for k, v in load_file(str(path)).items()}


def load_model(cls: Any, folder: Path, device: str = "cpu") -> Any:
    import torch

    return cls.from_pretrained(str(folder), torch_dtype=torch.float32).to(device).eval()


def load_vae(folder: Path, root: Path, device: str = "cpu") -> Any:
    from diffusers import AutoencoderKL

    if (folder / "vae" / "config.json").is_file():
        return load_model(AutoencoderKL, folder / "vae", device)
    shared = read_card(folder).get("vae", AUTOENCODER)
    path = root / shared
    if not (path / "config.json").is_file():
        raise ConfigError(f"checkpoint {folder} has no vae/ and {path} does not exist.")
    return load_model(AutoencoderKL, path, device)


TRAINED_FILE = "trained.safetensors"


def compact_frozen(folder: Path, root: Path) -> None:
    """Keep only the trained tensors of a frozen-spatial video U-Net (temporal layers and
    conv_in); its spatial weights are those of the T2I checkpoint named in its card, which is
    checked here tensor by tensor before anything is dropped."""
    from diffusers import UNet2DConditionModel, UNet3DConditionModel
    from safetensors.torch import save_file

    from .models import is_temporal

    full = folder / "unet" / "diffusion_pytorch_model.safetensors"
    if not full.is_file():
        return
    card = read_card(folder)
    t2i = load_model(UNet2DConditionModel, root / card["t2i"] / "unet")
    unet = load_model(UNet3DConditionModel, folder / "unet")
    spatial = t2i.state_dict()
    kept = {}
    for name, value in unet.state_dict().items():
        if is_temporal(name) or name == "conv_in.weight" or name == "conv_in.bias":
            kept[name] = value.half().contiguous()
        elif not bool((spatial[name] == value).all()):
            raise ValueError(f"{folder.name}: {name} differs from {card['t2i']}; not frozen")
    save_file(kept, str(folder / "unet" / TRAINED_FILE))
    full.unlink()
    card["stored"] = f"trained tensors only; spatial weights from {card['t2i']}"
    write_card(folder, card)


def load_video_unet(folder: Path, root: Path, device: str = "cpu") -> Any:
    """A video U-Net from a full diffusers folder or from a compact frozen-spatial one."""
    import torch
    from diffusers import UNet2DConditionModel, UNet3DConditionModel
    from safetensors.torch import load_file

    from .models import inflate_t2i

    unet_dir = folder / "unet"
    if not (unet_dir / TRAINED_FILE).is_file():
        return load_model(UNet3DConditionModel, unet_dir, device)
    card = read_card(folder)
    t2i = load_model(UNet2DConditionModel, root / card["t2i"] / "unet")
    unet = inflate_t2i(t2i)
    trained = {k: v.to(torch.float32) for k, v in load_file(str(unet_dir / TRAINED_FILE)).items()}
    missing = set(trained) - set(unet.state_dict())
    if missing:
        raise ValueError(f"{folder}: unknown tensors {sorted(missing)[:3]}")
    unet.load_state_dict(trained, strict=False)
    return unet.to(device).eval()
