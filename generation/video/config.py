"""A model variant as a validated, frozen config.

A config has a `kind`:
- `emu` (the default): the built-in Emu Video family, whose keys follow the paper (mode,
  schedule, spatial, multi-stage, HQ fine-tune, interpolation, sampler, guidance weights);
- `diffusers`: any text-to-video pipeline folder written by `DiffusionPipeline.save_pretrained`,
  loaded from that local folder only (generation/video/diffusers_pipeline.py);
- `imported`: no model at all: videos made elsewhere (a closed API, another lab's release) and
  taken in by `import_videos` (generation/imports.py).

`parse_config` checks the keys, types and ranges of either kind without touching the disk or
importing torch; what a folder holds is checked by `diffusers_pipeline.inspect_folder` and
`checkpoints.resolve_video_folder`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Self

Mode = Literal["factorized", "direct"]
Schedule = Literal["zero_snr", "standard", "linear"]
Spatial = Literal["frozen", "finetuned"]

MODES: tuple[str, ...] = ("factorized", "direct")
SCHEDULES: tuple[str, ...] = ("zero_snr", "standard", "linear")
SPATIALS: tuple[str, ...] = ("frozen", "finetuned")
SAMPLERS: tuple[str, ...] = ("ddim",)
KINDS: tuple[str, ...] = ("emu", "diffusers", "imported")
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")
OFFLOADS: tuple[str, ...] = ("none", "model", "sequential", "group")
# diffusers' attention backends (`set_attention_backend`) less the `*_hub` ones, which fetch
# kernels from a hub at run time. tests/generation/test_diffusers_variants.py keeps this list
# equal to the installed diffusers' own.
ATTENTION_BACKENDS: tuple[str, ...] = (
    "flash",
    "flash_varlen",
    "_flash_3",
    "_flash_varlen_3",
    "flex",
    "native",
    "_native_cudnn",
    "_native_efficient",
    "_native_flash",
    "_native_math",
    "_native_npu",
    "_native_xla",
    "sage",
    "sage_varlen",
    "_sage_qk_int8_pv_fp8_cuda",
    "_sage_qk_int8_pv_fp8_cuda_sm90",
    "_sage_qk_int8_pv_fp16_cuda",
    "_sage_qk_int8_pv_fp16_triton",
    "xformers",
)


class ConfigError(ValueError):
    """A variant config that cannot be used, with a message meant for the admin who wrote it."""


class _Config:
    """What every kind's config does: built from a dict with checked types, back to a dict."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        config = cls(**_values(cls, data))
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = dataclasses.asdict(self)  # type: ignore[call-overload]
        return data

    def validate(self) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class VariantConfig(_Config):
    """The built-in Emu Video family (kind `emu`)."""

    kind: str = "emu"
    mode: str = "factorized"
    schedule: str = "zero_snr"
    spatial: str = "frozen"
    multistage: bool = False
    hq_finetune: bool = False
    interpolation: bool = False
    # Steady the latents with the shipped temporal decoder before decoding frame by frame
    # (generation/video/temporal_decoding.py); off, each frame decodes on its own as trained.
    temporal_decoding: bool = False
    # τ in levels of 255 of the temporal filter on the decoded frames (temporal_filter.py):
    # frame-to-frame changes well under τ averaged away, larger ones kept; 0, off.
    temporal_filter: float = 0.0
    sampler: str = "ddim"
    steps: int = 10
    # Paper Eq. 1: w_i = 2.0 on the image condition, w_p = 7.5 on the text.
    guidance_image: float = 2.0
    guidance_text: float = 7.5
    guidance_rescale: float = 0.7
    height: int = 32
    width: int = 32
    frames: int = 8
    fps: int = 4
    # A shipped checkpoint name (generation/checkpoints/<name>) or an absolute local folder.
    checkpoint: str = ""

    def validate(self) -> None:
        _one_of("kind", self.kind, ("emu",))
        _one_of("mode", self.mode, MODES)
        _one_of("schedule", self.schedule, SCHEDULES)
        _one_of("spatial", self.spatial, SPATIALS)
        _one_of("sampler", self.sampler, SAMPLERS)
        if not 1 <= self.steps <= 1000:
            raise ConfigError("steps must be between 1 and 1000.")
        for name in ("height", "width"):
            value = getattr(self, name)
            if value < 8 or value > 2048 or value % 8:
                raise ConfigError(f"{name} must be a multiple of 8 between 8 and 2048.")
        if not 1 <= self.frames <= 256:
            raise ConfigError("frames must be between 1 and 256.")
        if not 1 <= self.fps <= 120:
            raise ConfigError("fps must be between 1 and 120.")
        if not 0.0 <= self.guidance_rescale <= 1.0:
            raise ConfigError("guidance_rescale must be between 0 and 1.")
        for name in ("guidance_image", "guidance_text"):
            if not 0.0 <= getattr(self, name) <= 50.0:
                raise ConfigError(f"{name} must be between 0 and 50.")
        if not 0.0 <= self.temporal_filter <= MAX_TEMPORAL_FILTER:
            raise ConfigError(
                f"temporal_filter must be between 0 (off) and {MAX_TEMPORAL_FILTER:g} levels."
            )


# The temporal filter's largest τ: far beyond any flicker, still under a moving edge's change.
MAX_TEMPORAL_FILTER = 64.0

# How the showcase renders the built-in family (the demo's variants; the gallery's last strip
# and the benches' showcase rows, with or without interpolation): flicker taken off by temporal
# decoding and the temporal filter, 8 frames interpolated to 29. Off by default, so registered
# variants keep giving their videos. benchmarks/bench_temporal_decoding.py measured τ 8, 16 and
# 32: at 16 the default's frames change within 1.5× the real videos' (docs/method.md).
SHOWCASE: dict[str, Any] = {
    "temporal_decoding": True,
    "temporal_filter": 16.0,
    "interpolation": True,
}

# A hub id such as "org/name": juice-eval never downloads, so it names no folder here.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


@dataclass(frozen=True)
class DiffusersConfig(_Config):
    """A diffusers text-to-video pipeline saved in a local folder (kind `diffusers`).

    Every key but `extra` maps onto the pipeline's own call; `extra` is passed through as it is
    (e.g. `{"max_sequence_length": 16}`) and wins over the mapped keys.
    """

    kind: str = "diffusers"
    path: str = ""
    num_frames: int = 9
    height: int = 32
    width: int = 32
    steps: int = 4
    guidance_scale: float = 5.0
    negative_prompt: str = ""
    fps: int = 8
    dtype: str = "float32"
    offload: str = "none"
    vae_tiling: bool = False
    attention_backend: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:
        # `extra` is a dict: hash the canonical JSON, so configs can key per-process caches.
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def validate(self) -> None:
        _one_of("kind", self.kind, ("diffusers",))
        if not self.path:
            raise ConfigError("path is required: the absolute path of a saved pipeline folder.")
        if not self.path.startswith("/"):
            if _HUB_ID.fullmatch(self.path):
                raise ConfigError(
                    f"path {self.path!r} looks like a hub id: juice-eval never downloads "
                    "models. Save the pipeline with save_pretrained and give that folder's "
                    "absolute path."
                )
            raise ConfigError(f"path must be an absolute folder path; got {self.path!r}.")
        if not 1 <= self.steps <= 1000:
            raise ConfigError("steps must be between 1 and 1000.")
        for name in ("height", "width"):
            value = getattr(self, name)
            if not 8 <= value <= 4096 or value % 8:
                raise ConfigError(f"{name} must be a multiple of 8 between 8 and 4096.")
        if not 1 <= self.num_frames <= 1024:
            raise ConfigError("num_frames must be between 1 and 1024.")
        if not 1 <= self.fps <= 120:
            raise ConfigError("fps must be between 1 and 120.")
        if not 0.0 <= self.guidance_scale <= 100.0:
            raise ConfigError("guidance_scale must be between 0 and 100.")
        _one_of("dtype", self.dtype, DTYPES)
        _one_of("offload", self.offload, OFFLOADS)
        if self.attention_backend:
            _one_of("attention_backend", self.attention_backend, ATTENTION_BACKENDS)
        reserved = {"prompt", "generator", "output_type", "num_videos_per_prompt"} & set(self.extra)
        if reserved:
            raise ConfigError(
                f"extra must not set {', '.join(sorted(reserved))}: the worker sets them."
            )
        try:
            json.dumps(self.extra)
        except (TypeError, ValueError) as exc:
            raise ConfigError("extra must hold JSON values only.") from exc


@dataclass(frozen=True)
class ImportedConfig(_Config):
    """Videos made elsewhere (kind `imported`): nothing to load, nothing to render."""

    kind: str = "imported"

    def validate(self) -> None:
        _one_of("kind", self.kind, ("imported",))


AnyConfig = VariantConfig | DiffusersConfig | ImportedConfig
_KIND_CLASSES: dict[str, type[VariantConfig] | type[DiffusersConfig] | type[ImportedConfig]] = {
    "emu": VariantConfig,
    "diffusers": DiffusersConfig,
    "imported": ImportedConfig,
}


def parse_config(data: Any) -> AnyConfig:
    """The config of any kind, checked: raises ConfigError with a message for the admin."""
    if not isinstance(data, dict):
        raise ConfigError("A variant config must be a JSON object.")
    kind = data.get("kind", "emu")
    if kind not in _KIND_CLASSES:
        raise ConfigError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}.")
    return _KIND_CLASSES[kind].from_dict(data)


def _values(cls: type, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError("A variant config must be a JSON object.")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"Unknown config keys: {', '.join(map(str, unknown))}.")
    return {name: _coerce(name, value, known[name].type) for name, value in data.items()}


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}.")


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    expected = str(annotation)
    if expected == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false.")
        return value
    if expected == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be a whole number.")
        return value
    if expected == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name} must be a number.")
        return float(value)
    if expected == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be text.")
        if "\x00" in value:
            raise ConfigError(f"{name} must not contain NUL characters.")
        return value
    if expected == "dict[str, Any]":
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a JSON object.")
        return dict(value)
    raise ConfigError(f"{name} has an unsupported type.")
