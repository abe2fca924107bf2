"""The inflated video U-Net (docs/method.md) on tiny diffusers configs."""

from __future__ import annotations

import pytest
import torch

from generation.video.models import TINY, build_t2i, extract_t2i, inflate_t2i, set_trainable
from generation.video.pipeline import image_condition

C = TINY.latent_channels


@pytest.fixture(scope="module")
def t2i():  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = build_t2i(TINY).eval()
    # Non-trivial spatial weights, so the identity check is not between two zero outputs.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def test_fresh_video_model_equals_t2i_frame_by_frame(t2i):  # type: ignore[no-untyped-def]
    # given a video U-Net inflated from the T2I U-Net, and any image condition
    video = inflate_t2i(t2i).eval()
    b, f = 2, 4
    noisy = torch.randn(b, C, f, 16, 16)
    cond, mask = image_condition(torch.randn(b, C, 16, 16), f)
    text = torch.randn(b, 5, TINY.cross_attention_dim)
    # when both run at the same timestep
    with torch.no_grad():
        out = video(torch.cat([noisy, cond, mask], 1), 10, encoder_hidden_states=text).sample
        frames = noisy.permute(0, 2, 1, 3, 4).reshape(b * f, C, 16, 16)
        per_frame = t2i(frames, 10, encoder_hidden_states=text.repeat_interleave(f, 0)).sample
    # then the video output is the T2I output frame by frame
    per_frame = per_frame.reshape(b, f, C, 16, 16).permute(0, 2, 1, 3, 4)
    assert out.abs().mean() > 1e-3
    torch.testing.assert_close(out, per_frame, atol=1e-5, rtol=1e-4)


def test_trained_temporal_layers_break_the_identity(t2i):  # type: ignore[no-untyped-def]
    video = inflate_t2i(t2i).eval()
    with torch.no_grad():
        video.transformer_in.proj_out.weight.fill_(0.1)
    x = torch.randn(1, 2 * C + 1, 4, 16, 16)
    text = torch.randn(1, 5, TINY.cross_attention_dim)
    fresh = inflate_t2i(t2i).eval()
    with torch.no_grad():
        a = video(x, 10, encoder_hidden_states=text).sample
        b = fresh(x, 10, encoder_hidden_states=text).sample
    assert (a - b).abs().max() > 1e-4


def test_conditioning_channel_layout(t2i):  # type: ignore[no-untyped-def]
    video = inflate_t2i(t2i)
    # conv_in takes [noisy latents C, image latents C, mask 1] and returns C channels
    assert video.conv_in.in_channels == 2 * C + 1
    assert video.config.out_channels == C
    torch.testing.assert_close(video.conv_in.weight[:, :C], t2i.conv_in.weight)
    assert torch.count_nonzero(video.conv_in.weight[:, C:]) == 0
    # the image sits at frame 0, zero-padded in time, mask 1 at frame 0 only
    image = torch.randn(2, C, 8, 8)
    cond, mask = image_condition(image, 5)
    assert cond.shape == (2, C, 5, 8, 8) and mask.shape == (2, 1, 5, 8, 8)
    torch.testing.assert_close(cond[:, :, 0], image)
    assert torch.count_nonzero(cond[:, :, 1:]) == 0
    assert mask[:, :, 0].eq(1).all() and mask[:, :, 1:].eq(0).all()


def test_t2i_is_the_video_unet_without_temporal_layers(t2i):  # type: ignore[no-untyped-def]
    video = inflate_t2i(t2i)
    back = extract_t2i(video)
    for name, value in t2i.state_dict().items():
        torch.testing.assert_close(back.state_dict()[name], value)


def test_frozen_spatial_params_get_no_grad_and_stay_unchanged(t2i):  # type: ignore[no-untyped-def]
    # given a video U-Net with frozen spatial layers
    video = inflate_t2i(t2i).train()
    params = set_trainable(video, spatial="frozen")
    before = {k: v.detach().clone() for k, v in video.state_dict().items()}
    opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.0)
    # when one optimiser step runs
    x = torch.randn(1, 2 * C + 1, 3, 16, 16)
    out = video(x, 10, encoder_hidden_states=torch.randn(1, 4, TINY.cross_attention_dim)).sample
    out.pow(2).mean().backward()
    opt.step()
    after = video.state_dict()
    # then spatial weights (and the T2I's own conv_in channels) are unchanged
    spatial = [n for n, p in video.named_parameters() if not p.requires_grad]
    assert spatial and all(video.get_parameter(n).grad is None for n in spatial)
    assert "conv_in.bias" in spatial  # shared with the T2I's own channels
    assert all(torch.equal(before[n], after[n]) for n in spatial)
    assert torch.equal(before["conv_in.weight"][:, :C], after["conv_in.weight"][:, :C])
    # while temporal layers and the new conv_in channels did learn
    assert not torch.equal(before["conv_in.weight"][:, C:], after["conv_in.weight"][:, C:])
    temporal = [n for n in after if "temp_convs" in n and ".conv4." in n]
    assert temporal and any(not torch.equal(before[n], after[n]) for n in temporal)


def test_finetuned_spatial_trains_everything(t2i):  # type: ignore[no-untyped-def]
    video = inflate_t2i(t2i)
    params = set_trainable(video, spatial="finetuned")
    assert len(params) == len(list(video.parameters()))


def test_interpolation_trains_temporal_layers_only(t2i):  # type: ignore[no-untyped-def]
    video = inflate_t2i(t2i)
    set_trainable(video, spatial="frozen", temporal_only=True)
    trained = {n for n, p in video.named_parameters() if p.requires_grad}
    assert trained
    assert all(("temp_" in n or n.startswith("transformer_in.")) for n in trained)
    assert "conv_in.weight" not in trained
