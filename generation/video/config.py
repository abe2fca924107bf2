"""A model variant as a validated, frozen config whose keys follow the Emu Video paper (SPEC §5)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

Mode = Literal["factorized", "direct"]
Schedule = Literal["zero_snr", "standard", "linear"]
Spatial = Literal["frozen", "finetuned"]

MODES: tuple[str, ...] = ("factorized", "direct")
SCHEDULES: tuple[str, ...] = ("zero_snr", "standard", "linear")
SPATIALS: tuple[str, ...] = ("frozen", "finetuned")
SAMPLERS: tuple[str, ...] = ("ddim",)


class ConfigError(ValueError):
    """A variant config that cannot be used, with a message meant for the admin who wrote it."""


@dataclass(frozen=True)
class VariantConfig:
    mode: str = "factorized"
    schedule: str = "zero_snr"
    spatial: str = "frozen"
    multistage: bool = False
    hq_finetune: bool = False
    interpolation: bool = False
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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariantConfig:
        if not isinstance(data, dict):
            raise ConfigError("A variant config must be a JSON object.")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"Unknown config keys: {', '.join(unknown)}.")
        values: dict[str, Any] = {}
        for name, value in data.items():
            values[name] = _coerce(name, value, known[name].type)
        config = cls(**values)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
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
        return value
    raise ConfigError(f"{name} has an unsupported type.")
