"""The procedural text–video data set."""

from __future__ import annotations

import numpy as np

from generation.video.data import (
    COLOUR_NAMES,
    MOTIONS,
    SHAPES,
    held_out_prompts,
    is_held_out,
    make_video_set,
    parse_prompt,
    reference_videos,
)


def test_same_seed_same_videos_and_slices_agree():
    a = make_video_set(6, seed=3)
    b = make_video_set(6, seed=3)
    tail = make_video_set(2, seed=3, start=4)
    assert np.array_equal(a.videos, b.videos) and a.captions == b.captions
    assert np.array_equal(a.videos[4:], tail.videos)
    assert not np.array_equal(a.videos, make_video_set(6, seed=4).videos)


def test_training_split_never_contains_held_out_combinations():
    train = make_video_set(60, seed=0)
    held = make_video_set(20, seed=0, split="heldout")
    assert not any(is_held_out(c, s, m) for c, s, m, _ in train.labels)
    assert all(is_held_out(c, s, m) for c, s, m, _ in held.labels)
    # yet every single attribute value appears in training
    assert set(train.labels[:, 0]) == set(range(len(COLOUR_NAMES)))
    assert set(train.labels[:, 1]) == set(range(len(SHAPES)))


def test_captions_name_what_is_drawn():
    videos = make_video_set(30, seed=1)
    for caption, (c, s, m, b) in zip(videos.captions, videos.labels, strict=True):
        parsed = parse_prompt(caption)
        assert (parsed.colour, parsed.shape, parsed.motion, parsed.background) == (c, s, m, b)


def test_motion_is_visible_in_the_pixels():
    videos = reference_videos(
        [
            "a white square moves right on a black background",
            "a white square moves up on a black background",
            "a white square grows on a black background",
        ],
        seed=0,
    )
    bright = videos.videos.mean(axis=-1) > 128  # (N, T, H, W)
    xs = [np.argwhere(f)[:, 1].mean() for f in bright[0]]
    ys = [np.argwhere(f)[:, 0].mean() for f in bright[1]]
    areas = bright[2].sum(axis=(1, 2))
    assert xs[-1] - xs[0] > 5 and ys[0] - ys[-1] > 5 and areas[-1] > 2 * areas[0]


def test_demo_prompts_parse_and_held_out_prompts_cover_every_motion():
    parsed = parse_prompt("a yellow triangle moves up on a purple background")
    assert COLOUR_NAMES[parsed.colour] == "yellow" and MOTIONS[parsed.motion] == "up"
    assert parse_prompt("a corgi surfing").colour is None
    motions = {parse_prompt(p).motion for p in held_out_prompts()}
    assert motions == set(range(len(MOTIONS)))
    assert len(held_out_prompts()) >= 32
