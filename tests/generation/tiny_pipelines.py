"""Tiny random-weight CogVideoX, LTX and Wan pipelines, built and saved offline for the tests.

Each is what a team would hand juice-eval: a folder written by `save_pretrained`. The components
are as small as diffusers' own fast tests make them (0.3-0.5 MB a folder); the text encoder is a
random T5 (UMT5 for Wan) of width 32 and the tokenizer a T5 tokenizer built in memory from a
vocabulary list, so nothing comes from a hub. `python -m tests.generation.tiny_pipelines DIR`
saves all three (benchmarks use it).
"""

from __future__ import annotations

import string
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

WORDS = (
    "a an the of in on with and to is red green blue yellow purple orange white circle square "
    "triangle moves left right up down slowly quickly cat dog beach city video"
).split()
# Sizes and frame counts every family here accepts (tests/generation/test_diffusers_variants.py).
FRAMES = 9
SIZE = 32
# Extra call arguments the tiny builds need: CogVideoX's text positions are sized for 16 tokens.
EXTRA: dict[str, dict[str, Any]] = {
    "cogvideox": {"max_sequence_length": 16},
    "ltx": {"max_sequence_length": 16},
    "wan": {"max_sequence_length": 16},
}


def tokenizer() -> Any:
    """A T5 (Unigram) tokenizer with no file to download: specials, characters, a few words."""
    from transformers import T5Tokenizer

    vocab: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    chars = string.ascii_letters + string.digits + string.punctuation
    vocab += [(c, -6.0) for c in chars] + [("▁" + c, -5.0) for c in chars]
    vocab += [("▁" + w, -3.0) for w in WORDS]
    unique = list(dict(vocab).items())
    return T5Tokenizer(vocab=unique, extra_ids=0, model_max_length=512)


def text_encoder(tok: Any, *, umt5: bool = False) -> Any:
    import torch
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    config_cls, model_cls = (UMT5Config, UMT5EncoderModel) if umt5 else (T5Config, T5EncoderModel)
    config = config_cls(
        vocab_size=len(tok),
        d_model=32,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id,
    )
    return model_cls(config).eval()


def build_cogvideox() -> Any:
    import torch
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
        DDIMScheduler,
    )

    tok = tokenizer()
    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4,
        attention_head_dim=8,
        in_channels=4,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=32,
        num_layers=1,
        sample_width=4,
        sample_height=4,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=16,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    return CogVideoXPipeline(
        tokenizer=tok,
        text_encoder=text_encoder(tok),
        vae=vae,
        transformer=transformer,
        scheduler=DDIMScheduler(),
    )


def build_ltx() -> Any:
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )

    tok = tokenizer()
    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=32,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    return LTXPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder(tok),
        tokenizer=tok,
        transformer=transformer,
    )


def build_wan() -> Any:
    import torch
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )

    tok = tokenizer()
    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    return WanPipeline(
        tokenizer=tok,
        text_encoder=text_encoder(tok, umt5=True),
        vae=vae,
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        transformer_2=None,
    )


BUILDERS: dict[str, Callable[[], Any]] = {
    "cogvideox": build_cogvideox,
    "ltx": build_ltx,
    "wan": build_wan,
}


def save(family: str, root: Path) -> Path:
    """Build one family's tiny pipeline and save it under `root`; returns the folder."""
    folder = root / f"tiny-{family}"
    if not (folder / "model_index.json").is_file():
        BUILDERS[family]().save_pretrained(str(folder))
    return folder


def variant_config(family: str, folder: Path, **overrides: Any) -> dict[str, Any]:
    """A `diffusers` variant config for a saved tiny pipeline."""
    return {
        "kind": "diffusers",
        "path": str(folder),
        "num_frames": FRAMES,
        "height": SIZE,
        "width": SIZE,
        "steps": 2,
        "guidance_scale": 3.0,
        "fps": 8,
        "extra": EXTRA[family],
        **overrides,
    }


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "var/tiny-pipelines")
    for name in BUILDERS:
        print(save(name, out))
