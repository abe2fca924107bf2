"""Any diffusers text-to-video pipeline saved in a local folder, behind the worker's interface.

`inspect_folder(config)` checks a `DiffusersConfig` against its folder by reading JSON only
(model_index.json and each component's config, never the weights, never torch): the folder is
there and readable, it names a supported pipeline class, and the size and frame count fit that
family's rules, which are stated here rather than left to the pipeline to round silently.

`DiffusersGenerator(config, device)` loads the folder with
`DiffusionPipeline.from_pretrained(folder, local_files_only=True)` and renders with one call per
sampling batch, mapped onto each pipeline's own signature by `call_kwargs`: the frame-count
argument's name, `output_type="np"`, a guider component instead of `guidance_scale`, and one
`torch.Generator` per video so that a seed reproduces its video.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import ConfigError, DiffusersConfig
from .pipeline import GeneratedVideo


@dataclass(frozen=True)
class Family:
    """What one pipeline class accepts. `frames_step` k: counts of the form k·n + 1 only."""

    size_multiple: int = 8
    frames_step: int = 0  # 0: any count the pipeline takes
    frames_vae_key: str = ""  # a VAE config key that sets frames_step for this checkpoint
    max_frames: int = 0
    fixed_frames_key: str = ""  # transformer config key whose value is the only count accepted
    guidance: str = "guidance_scale"  # or "true_cfg_scale", or "guider" (a component)
    always_tile_vae: bool = False
    call_defaults: tuple[tuple[str, Any], ...] = ()
    frames_note: str = ""


# Verified on diffusers 0.42.1 (CogVideoX, LTX and Wan by the tests, on tiny saved pipelines;
# the rest from each pipeline's own checks). A family not listed with a frame rule takes any
# count, and the worker records whatever count comes back.
FAMILIES: dict[str, Family] = {
    "AllegroPipeline": Family(always_tile_vae=True),
    "AnimateDiffPipeline": Family(max_frames=32),
    "AnimateDiffSDXLPipeline": Family(max_frames=32),
    "AnimateDiffPAGPipeline": Family(max_frames=32),
    "CogVideoXPipeline": Family(size_multiple=16, frames_step=8),
    "CosmosTextToWorldPipeline": Family(size_multiple=16),
    "EasyAnimatePipeline": Family(size_multiple=16),
    "HunyuanVideoPipeline": Family(size_multiple=16, frames_step=4, guidance="true_cfg_scale"),
    "HunyuanVideo15Pipeline": Family(size_multiple=16, frames_step=4, guidance="guider"),
    "Kandinsky5T2VPipeline": Family(size_multiple=16, frames_step=4),
    "LTXPipeline": Family(
        size_multiple=32, frames_step=8, frames_vae_key="spatio_temporal_scaling"
    ),
    "LTXConditionPipeline": Family(
        size_multiple=32, frames_step=8, frames_vae_key="spatio_temporal_scaling"
    ),
    "LTX2Pipeline": Family(size_multiple=32, frames_step=8),
    "LTX2HDRPipeline": Family(size_multiple=32, frames_step=8),
    "LattePipeline": Family(fixed_frames_key="video_length"),
    "MochiPipeline": Family(size_multiple=16, frames_step=6),
    "MotifVideoPipeline": Family(size_multiple=16, frames_step=4, guidance="guider"),
    "SanaVideoPipeline": Family(
        size_multiple=32, frames_step=4, call_defaults=(("use_resolution_binning", False),)
    ),
    "SkyReelsV2Pipeline": Family(size_multiple=16, frames_step=4),
    "SkyReelsV2DiffusionForcingPipeline": Family(size_multiple=16, frames_step=4),
    "WanPipeline": Family(size_multiple=16, frames_step=4, frames_vae_key="temperal_downsample"),
    "Cosmos2_5_PredictBasePipeline": Family(size_multiple=16, frames_step=4),
    "HeliosPipeline": Family(size_multiple=16),
    "HeliosPyramidPipeline": Family(size_multiple=16),
    "Kandinsky6TI2VAPipeline": Family(size_multiple=16, frames_step=4),
    "AnyFlowPipeline": Family(size_multiple=16, frames_step=4),
}
DEPRECATED = (
    "TextToVideoSDPipeline",
    "TextToVideoZeroPipeline",
    "TextToVideoZeroSDXLPipeline",
    "I2VGenXLPipeline",
    "PIAPipeline",
)
# The names each pipeline might give the frame count (SanaVideo: frames; Latte: video_length).
FRAME_ARGUMENTS = ("num_frames", "frames", "video_length")


@dataclass(frozen=True)
class FolderReport:
    """What registration learned from a folder: its class, components and notes for the admin."""

    class_name: str
    components: tuple[str, ...]
    notes: tuple[str, ...] = ()


def inspect_folder(config: DiffusersConfig) -> FolderReport:
    """Check a config against its folder from the JSON files alone; raise ConfigError."""
    folder = Path(config.path)
    if not folder.is_dir():
        raise ConfigError(f"No folder at {config.path}.")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise ConfigError(f"The folder {config.path} is not readable by this process.")
    index = _read_json(folder / "model_index.json", "model_index.json")
    class_name = str(index.get("_class_name", ""))
    if class_name in DEPRECATED:
        raise ConfigError(
            f"{class_name} is deprecated in diffusers and not supported: save the model with a "
            "current text-to-video pipeline class."
        )
    family = FAMILIES.get(class_name)
    if family is None:
        raise ConfigError(
            f"model_index.json names {class_name or 'no class'}, which is not a text-to-video "
            f"pipeline juice-eval supports. Supported: {', '.join(sorted(FAMILIES))}."
        )
    # Components are [library, class] pairs; other entries are the pipeline's own settings
    # (Wan's boundary_ratio, say), and [null, null] marks an optional component left out.
    components = tuple(
        name
        for name, spec in index.items()
        if not name.startswith("_") and isinstance(spec, list) and spec != [None, None]
    )
    for name in components:
        _check_component(folder, name, index[name])
    notes = _check_shape(config, family, folder, class_name)
    return FolderReport(class_name=class_name, components=components, notes=tuple(notes))


def _read_json(path: Path, label: str) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(
            f"{path.parent} has no {label}: is it a folder written by "
            "DiffusionPipeline.save_pretrained?"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read as JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a JSON object.")
    return data


def _check_component(folder: Path, name: str, spec: Any) -> None:
    """A component's sub-folder exists and its config parses (weights are left alone)."""
    if len(spec) != 2:
        raise ConfigError(f"model_index.json has an unreadable entry for {name!r}.")
    library, class_name = spec
    sub = folder / name
    if not sub.is_dir():
        raise ConfigError(f"model_index.json lists {name} ({class_name}), but {sub} is missing.")
    if library == "transformers" and "Tokenizer" in str(class_name):
        if not any(sub.iterdir()):
            raise ConfigError(f"The tokenizer folder {sub} is empty.")
        return
    for candidate in ("config.json", "scheduler_config.json", "guider_config.json"):
        if (sub / candidate).is_file():
            _read_json(sub / candidate, candidate)
            return
    raise ConfigError(f"{sub} has no config file ({name}, {class_name}).")


def frames_step(family: Family, folder: Path) -> int:
    """The frame-count step of this checkpoint: from its VAE's temporal compression if known."""
    if not family.frames_vae_key:
        return family.frames_step
    vae = folder / "vae" / "config.json"
    if not vae.is_file():
        return family.frames_step
    flags = json.loads(vae.read_text(encoding="utf-8")).get(family.frames_vae_key)
    if isinstance(flags, list) and flags:
        # Each temporal down-sampling halves the frames: 2 of them, 4k+1; 3, 8k+1 (real LTX).
        return int(2 ** sum(1 for flag in flags if flag))
    return family.frames_step


def _check_shape(config: DiffusersConfig, family: Family, folder: Path, name: str) -> list[str]:
    notes: list[str] = []
    for key in ("height", "width"):
        value = getattr(config, key)
        if value % family.size_multiple:
            raise ConfigError(
                f"{name} needs {key} divisible by {family.size_multiple}; {value} is not "
                f"(nearest: {_nearest(value, family.size_multiple, 0)})."
            )
    frames = config.num_frames
    if family.max_frames and frames > family.max_frames:
        raise ConfigError(f"{name} takes at most {family.max_frames} frames; got {frames}.")
    if family.fixed_frames_key:
        transformer = folder / "transformer" / "config.json"
        fixed = _read_json(transformer, "transformer/config.json").get(family.fixed_frames_key)
        if isinstance(fixed, int) and frames != fixed:
            raise ConfigError(f"This {name} was trained for {fixed} frames only; got {frames}.")
    step = frames_step(family, folder)
    if step == 8 and name == "CogVideoXPipeline":
        # CogVideoX returns the requested count for 8k and 8k+1 frames only.
        if frames % 8 not in (0, 1):
            raise ConfigError(
                f"{name} returns the requested frame count only for 8k or 8k+1 frames; "
                f"{frames} would come back as another count. Use {frames - frames % 8} or "
                f"{frames - frames % 8 + 1}."
            )
    elif step and (frames - 1) % step:
        raise ConfigError(
            f"{name} (this checkpoint) makes {step}k+1 frames and would silently change "
            f"{frames}; use {_nearest(frames, step, 1)}."
        )
    if not step and not family.max_frames and not family.fixed_frames_key:
        notes.append(
            f"{name}'s frame-count rule is not checked here: each video is recorded with the "
            "frame count, size and fps the pipeline returns."
        )
    if family.always_tile_vae and not config.vae_tiling:
        notes.append(f"{name} decodes only with VAE tiling: the worker turns it on.")
    return notes


def _nearest(value: int, step: int, offset: int) -> str:
    below = max(step + offset, (value - offset) // step * step + offset)
    return f"{below} or {below + step}" if below != value else str(value)


def call_kwargs(pipeline_class: type, config: DiffusersConfig) -> dict[str, Any]:
    """The request of `config`, named as this pipeline's `__call__` names it.

    Prompt, generators and batch size are added per call by `DiffusersGenerator.generate`.
    """
    params = inspect.signature(pipeline_class.__call__).parameters
    family = FAMILIES.get(pipeline_class.__name__, Family())
    mapped: dict[str, Any] = {
        "height": config.height,
        "width": config.width,
        # Not every pipeline takes a step count (HeliosPyramid schedules its own).
        "num_inference_steps": config.steps,
        family.guidance: config.guidance_scale,
        "num_videos_per_prompt": 1,
        **dict(family.call_defaults),
    }
    wanted = {key: value for key, value in mapped.items() if key in params}
    frame_argument = next((name for name in FRAME_ARGUMENTS if name in params), None)
    if frame_argument is None:
        raise ConfigError(f"{pipeline_class.__name__} takes no frame count: not a video pipeline.")
    wanted[frame_argument] = config.num_frames
    wanted["output_type"] = "np"
    wanted.update(config.extra)
    unknown = sorted(set(config.extra) - set(params))
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise ConfigError(
            f"{pipeline_class.__name__} does not take {', '.join(unknown)} (from extra)."
        )
    return wanted


class DiffusersGenerator:
    """A loaded pipeline; `generate(prompts, seeds)` renders one video per (prompt, seed)."""

    def __init__(self, config: DiffusersConfig, device: str = "cpu") -> None:
        import torch
        from diffusers import DiffusionPipeline

        report = inspect_folder(config)
        self.config = config
        self.device = device
        self.dtype = getattr(torch, config.dtype)
        pipe = DiffusionPipeline.from_pretrained(  # type: ignore[no-untyped-call]
            config.path, local_files_only=True, dtype=self.dtype
        )
        pipe.set_progress_bar_config(disable=True)
        family = FAMILIES[report.class_name]
        self._place(pipe, config.offload, device)
        if config.vae_tiling or family.always_tile_vae:
            # Not saved with the pipeline: set after every load.
            pipe.vae.enable_tiling()
        if config.attention_backend:
            for component in pipe.components.values():
                if hasattr(component, "set_attention_backend"):
                    component.set_attention_backend(config.attention_backend)
        if family.guidance == "guider" and hasattr(pipe, "guider"):
            pipe.register_modules(guider=pipe.guider.new(guidance_scale=config.guidance_scale))
        self.pipe = pipe
        self.family = family
        self.kwargs = call_kwargs(type(pipe), config)
        self.takes_negative = "negative_prompt" in inspect.signature(type(pipe).__call__).parameters
        self.notes = report.notes

    @staticmethod
    def _place(pipe: Any, offload: str, device: str) -> None:
        if offload == "none":
            pipe.to(device)
            return
        if device == "cpu":
            raise ConfigError(f"offload {offload!r} needs a GPU; this worker runs on the CPU.")
        if offload == "model":
            pipe.enable_model_cpu_offload(device=device)
        elif offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=device)
        else:
            pipe.enable_group_offload(
                onload_device=device,
                offload_device="cpu",
                offload_type="block_level",
                num_blocks_per_group=1,
            )

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[GeneratedVideo]:
        """One pipeline call for the whole sampling batch; each video from its own generator."""
        import torch

        # 1. Check inputs.
        if len(prompts) != len(seeds):
            raise ValueError("prompts and seeds must have the same length.")
        if not prompts:
            return []
        started = time.perf_counter()
        # 2. One generator per video, on the CPU: the same seed gives the same noise anywhere.
        generators = [torch.Generator("cpu").manual_seed(int(seed)) for seed in seeds]
        kwargs = dict(self.kwargs, prompt=list(prompts), generator=generators)
        if self.takes_negative:
            kwargs.setdefault("negative_prompt", [self.config.negative_prompt] * len(prompts))
        # 3. Sample.
        with torch.inference_mode():
            output = self.pipe(**kwargs)
        # 4. Frames as uint8, whatever size and count the pipeline actually returned.
        frames = _as_uint8(output.frames)
        if frames.shape[0] != len(prompts):
            raise RuntimeError(
                f"{type(self.pipe).__name__} returned {frames.shape[0]} videos for "
                f"{len(prompts)} prompts."
            )
        per_video = (time.perf_counter() - started) / len(prompts)
        return [GeneratedVideo(frames=v, fps=self.config.fps, seconds=per_video) for v in frames]

    def release(self) -> None:
        """Drop the weights (called when another pipeline takes this one's place)."""
        self.pipe = None


def _as_uint8(frames: Any) -> np.ndarray:
    """(B, T, H, W, 3) floats in [0, 1] (output_type="np") → uint8."""
    if isinstance(frames, list):
        frames = np.stack([np.asarray(video) for video in frames])
    array = np.asarray(frames)
    if array.ndim != 5 or array.shape[-1] != 3:
        raise RuntimeError(f"expected (batch, frames, H, W, 3) frames, got {array.shape}.")
    if array.dtype == np.uint8:
        return array
    result: np.ndarray = (np.clip(array.astype(np.float32), 0.0, 1.0) * 255.0).round()
    return result.astype(np.uint8)
