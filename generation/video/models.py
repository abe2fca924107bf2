"""The Emu Video model family composed from diffusers blocks, plus the glue diffusers lacks.

- `build_autoencoder`: the per-frame image autoencoder (`AutoencoderKL`).
- `build_t2i`: the text-to-image U-Net (`UNet2DConditionModel`).
- `inflate_t2i`: the video U-Net (`UNet3DConditionModel`) made from the T2I U-Net (docs/method.md):
  spatial weights copied in, `conv_in` widened to `[noisy, image latents, mask]` = 2C+1 channels
  with zero weights on the new channels (InstructPix2Pix), a `TemporalConvLayer` after every
  spatial resnet (identity at init: diffusers zeroes its last conv) and a
  `TransformerTemporalModel` after every spatial attention (and `transformer_in`), made identity
  by zeroing `proj_out`. At init the video model is the T2I model applied frame by frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

TEMPORAL_MARKERS = ("temp_convs.", "temp_attentions.", "transformer_in.")


@dataclass(frozen=True)
class ModelSize:
    block_out_channels: tuple[int, ...] = (32, 64)
    layers_per_block: int = 1
    norm_num_groups: int = 8
    # Channels per attention head. UNet3DConditionModel passes its `attention_head_dim` on as
    # the head size (its blocks swap the two arguments), UNet2DConditionModel reads it as the
    # number of heads; `_unet_kwargs` gives each what makes both split heads the same way.
    attention_head_dim: int = 16
    latent_channels: int = 4
    cross_attention_dim: int = 384
    vae_block_out_channels: tuple[int, ...] = (16, 32, 32)
    vae_norm_num_groups: int = 8

    @property
    def vae_scale(self) -> int:
        return int(2 ** (len(self.vae_block_out_channels) - 1))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSize:
        values = dict(data)
        for key in ("block_out_channels", "vae_block_out_channels"):
            values[key] = tuple(values[key])
        return cls(**values)


# The shipped family (32×32 px → 8×8 latents) and the tiny size for unit tests.
SHIPPED = ModelSize()
TINY = ModelSize(
    block_out_channels=(4, 8),
    norm_num_groups=4,
    attention_head_dim=2,
    cross_attention_dim=8,
    vae_block_out_channels=(8, 16),
    vae_norm_num_groups=4,
)


def build_autoencoder(size: ModelSize) -> Any:
    from diffusers import AutoencoderKL

    n = len(size.vae_block_out_channels)
    return AutoencoderKL(  # type: ignore[no-untyped-call]
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=size.vae_block_out_channels,
        layers_per_block=1,
        latent_channels=size.latent_channels,
        norm_num_groups=size.vae_norm_num_groups,
        # Shapes on flat backgrounds need no global attention; it would double the cost here.
        mid_block_add_attention=False,
    )


def _unet_kwargs(size: ModelSize) -> dict[str, Any]:
    return {
        "block_out_channels": size.block_out_channels,
        "layers_per_block": size.layers_per_block,
        "norm_num_groups": size.norm_num_groups,
        "cross_attention_dim": size.cross_attention_dim,
        "attention_head_dim": _heads_per_block(size.block_out_channels, size.attention_head_dim),
        "out_channels": size.latent_channels,
    }


def _heads_per_block(channels: tuple[int, ...], head_dim: int) -> tuple[int, ...]:
    return tuple(c // head_dim for c in channels)


def build_t2i(size: ModelSize) -> Any:
    from diffusers import UNet2DConditionModel

    n = len(size.block_out_channels)
    return UNet2DConditionModel(  # type: ignore[no-untyped-call]
        in_channels=size.latent_channels,
        down_block_types=("CrossAttnDownBlock2D",) * n,
        up_block_types=("CrossAttnUpBlock2D",) * n,
        # UNet3DConditionModel's spatial transformers use linear projections; match them so
        # every spatial weight copies across unchanged.
        use_linear_projection=True,
        **_unet_kwargs(size),
    )


def build_video_unet(t2i_config: Any) -> Any:
    """An empty `UNet3DConditionModel` whose spatial layout matches a T2I U-Net config."""
    from diffusers import UNet3DConditionModel

    n = len(t2i_config.block_out_channels)
    c = t2i_config.in_channels
    heads = t2i_config.attention_head_dim
    head_dim = t2i_config.block_out_channels[0] // (heads if isinstance(heads, int) else heads[0])
    return UNet3DConditionModel(  # type: ignore[no-untyped-call]
        in_channels=2 * c + 1,
        out_channels=t2i_config.out_channels,
        down_block_types=("CrossAttnDownBlock3D",) * n,
        up_block_types=("CrossAttnUpBlock3D",) * n,
        block_out_channels=tuple(t2i_config.block_out_channels),
        layers_per_block=t2i_config.layers_per_block,
        norm_num_groups=t2i_config.norm_num_groups,
        cross_attention_dim=t2i_config.cross_attention_dim,
        attention_head_dim=head_dim,
    )


def inflate_t2i(t2i: Any) -> Any:
    """The video U-Net initialised from a T2I U-Net so that it equals it frame by frame."""
    import torch
    from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel

    video = build_video_unet(t2i.config)
    spatial = t2i.state_dict()
    target = video.state_dict()
    c = t2i.config.in_channels
    for name, value in spatial.items():
        if name == "conv_in.weight":
            widened = torch.zeros_like(target[name])
            widened[:, :c] = value
            target[name] = widened
        elif target[name].shape != value.shape:
            raise ValueError(f"T2I weight {name} {tuple(value.shape)} does not fit the video U-Net")
        else:
            target[name] = value
    video.load_state_dict(target)
    with torch.no_grad():
        for module in video.modules():
            if isinstance(module, TransformerTemporalModel):
                module.proj_out.weight.zero_()
                module.proj_out.bias.zero_()
    return video


def is_temporal(name: str) -> bool:
    return any(marker in name for marker in TEMPORAL_MARKERS)


def set_trainable(video: Any, *, spatial: str, temporal_only: bool = False) -> list[Any]:
    """Freeze what the recipe keeps fixed and return the parameters to optimise.

    `spatial="frozen"` (the paper's choice) trains the temporal layers and the new image/mask
    input channels of the widened `conv_in`, nothing else: `conv_in.bias` is shared with the
    T2I's own channels, so it stays frozen too, and every spatial tensor (bias included) stays
    bit-identical to the T2I's. The factorized pipeline makes the first image with the T2I
    taken back out of the video U-Net (`extract_t2i`); a trained bias would shift that image.
    `"finetuned"` trains everything. The interpolation model trains temporal layers only
    (docs/method.md). Use an optimiser without weight decay: zero gradients then change nothing.
    """
    import torch

    trainable = []
    c = video.config.out_channels
    for name, param in video.named_parameters():
        if temporal_only:
            train = is_temporal(name)
        elif spatial == "frozen":
            train = is_temporal(name) or name == "conv_in.weight"
        else:
            train = True
        param.requires_grad_(train)
        if train:
            trainable.append(param)
        if train and spatial == "frozen" and name == "conv_in.weight" and not temporal_only:
            # The T2I's own input channels stay frozen: only the new image/mask ones learn.
            param.register_hook(lambda grad: torch.cat([grad[:, :c] * 0, grad[:, c:]], dim=1))
    return trainable


def extract_t2i(video: Any) -> Any:
    """The T2I U-Net inside a video U-Net: its spatial weights without the temporal layers."""
    t2i = build_t2i_from_video_config(video.config)
    source = video.state_dict()
    target = t2i.state_dict()
    c = t2i.config.in_channels
    for name in target:
        target[name] = source[name][:, :c] if name == "conv_in.weight" else source[name]
    t2i.load_state_dict(target)
    return t2i


def build_t2i_from_video_config(config: Any) -> Any:
    from diffusers import UNet2DConditionModel

    n = len(config.block_out_channels)
    return UNet2DConditionModel(  # type: ignore[no-untyped-call]
        in_channels=config.out_channels,
        out_channels=config.out_channels,
        down_block_types=("CrossAttnDownBlock2D",) * n,
        up_block_types=("CrossAttnUpBlock2D",) * n,
        use_linear_projection=True,
        block_out_channels=tuple(config.block_out_channels),
        layers_per_block=config.layers_per_block,
        norm_num_groups=config.norm_num_groups,
        cross_attention_dim=config.cross_attention_dim,
        attention_head_dim=_heads_per_block(
            tuple(config.block_out_channels), config.attention_head_dim
        ),
    )
