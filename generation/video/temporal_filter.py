"""A temporal filter on decoded frames: small frame-to-frame changes averaged away, large ones kept.

The built-in family's videos flicker where they should stand still: a plain background changes
by a few levels from frame to frame, more than real videos sent through the same autoencoder
(benchmarks/bench_temporal_decoding.py measures both). Each pixel of each frame becomes the
weighted mean of the same pixel in the frames up to RADIUS either side, each weighted by
exp(-d² / 2τ²), where d is the RMS colour difference from the pixel itself in levels of 255.
A change well under τ (flicker) is averaged away; one well over τ (an edge moving past, a
colour changing) gets almost no weight, so motion and cuts stay as they were.

It suits content of plain areas and sharp edges, such as the built-in family's: a slow,
low-contrast change under τ per frame would be smoothed too (a soft gradient drifting by a
few levels a frame). Off by default (`temporal_filter: 0`); a variant turns it on with τ
(config.SHOWCASE: 16).
"""

from __future__ import annotations

import numpy as np

RADIUS = 2  # frames either side


def steady(frames: np.ndarray, tau: float, radius: int = RADIUS) -> np.ndarray:
    """(..., T, H, W, C) uint8 frames → the same shape, filtered along T (see the module)."""
    if tau <= 0 or frames.shape[-4] < 2:
        return frames
    x = frames.astype(np.float32)
    t = x.shape[-4]
    total = np.zeros_like(x)
    weight = np.zeros((*x.shape[:-1], 1), dtype=np.float32)
    scale = -0.5 / (tau * tau)
    for shift in range(-radius, radius + 1):
        lo, hi = max(0, -shift), min(t, t - shift)  # frames t whose t + shift exists
        if lo >= hi:
            continue
        here = x[..., lo:hi, :, :, :]
        there = x[..., lo + shift : hi + shift, :, :, :]
        w = np.exp(scale * np.square(there - here).mean(axis=-1, keepdims=True))
        total[..., lo:hi, :, :, :] += w * there
        weight[..., lo:hi, :, :, :] += w
    return np.clip(np.rint(total / weight), 0, 255).astype(np.uint8)
