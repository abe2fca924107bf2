"""Variants of kind `diffusers`: any saved text-to-video pipeline, checked when registered,
rendered by the worker with its own call signature, reproducible per seed."""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys
from pathlib import Path

import diffusers
import numpy as np
import pytest
import torch
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from generation import services
from generation.models import GenerationJob, ModelVariant, Video
from generation.video import pipeline
from generation.video.config import ATTENTION_BACKENDS, ConfigError, DiffusersConfig, parse_config
from generation.video.diffusers_pipeline import (
    DEPRECATED,
    FAMILIES,
    FRAME_ARGUMENTS,
    DiffusersGenerator,
    call_kwargs,
    inspect_folder,
)
from tests.factories import StaffFactory
from tests.generation.fakes import FakeGenerator, install
from tests.generation.tiny_pipelines import variant_config

pytestmark = pytest.mark.django_db


def _copy_with_index(source: Path, target: Path, **changes: object) -> Path:
    shutil.copytree(source, target)
    index = json.loads((target / "model_index.json").read_text())
    index.update(changes)
    (target / "model_index.json").write_text(json.dumps(index))
    return target


def test_the_attention_names_are_the_installed_diffusers_backends_less_the_hub_ones():
    from diffusers.models.attention_dispatch import AttentionBackendName

    installed = {b.value for b in AttentionBackendName if "hub" not in b.value}
    assert set(ATTENTION_BACKENDS) == installed


@pytest.mark.parametrize("class_name", sorted(FAMILIES))
def test_every_supported_class_exists_and_the_adapter_speaks_its_signature(class_name):
    cls = getattr(diffusers, class_name)
    params = inspect.signature(cls.__call__).parameters
    config = DiffusersConfig(path="/models/x", num_frames=9, guidance_scale=4.0)

    kwargs = call_kwargs(cls, config)

    assert set(kwargs) <= set(params), "only arguments the pipeline takes"
    assert [k for k in FRAME_ARGUMENTS if k in kwargs] == [
        next(k for k in FRAME_ARGUMENTS if k in params)
    ]
    assert kwargs["output_type"] == "np" and 9 in kwargs.values()
    guidance = FAMILIES[class_name].guidance
    if guidance == "guider":
        assert "guider" in inspect.signature(cls.__init__).parameters
        assert "guidance_scale" not in kwargs
    else:
        assert kwargs[guidance] == 4.0


def test_the_deprecated_classes_are_known_to_diffusers_and_none_is_supported():
    assert not set(DEPRECATED) & set(FAMILIES)
    assert all(hasattr(diffusers, name) for name in DEPRECATED)


def test_the_three_tiny_families_register_with_their_class_and_render_what_was_asked(
    tiny_pipelines,
):
    classes = {"cogvideox": "CogVideoXPipeline", "ltx": "LTXPipeline", "wan": "WanPipeline"}
    for family, folder in tiny_pipelines.items():
        done = services.register_variant(
            name=f"tiny {family}", config=variant_config(family, folder)
        )
        assert done.created and done.variant.config["kind"] == "diffusers"
        assert done.notes[0] == f"Loads {classes[family]} from {folder}."
        generator = DiffusersGenerator(parse_config(done.variant.config), "cpu")
        (video,) = generator.generate(["a red circle moves left"], [3])
        assert video.frames.shape == (9, 32, 32, 3) and video.frames.dtype == np.uint8
        assert video.fps == 8


@pytest.mark.parametrize(
    ("family", "frames"), [("wan", 5), ("ltx", 5), ("cogvideox", 8), ("cogvideox", 17)]
)
def test_frame_counts_the_rules_accept_come_back_unchanged(tiny_pipelines, family, frames):
    config = parse_config(variant_config(family, tiny_pipelines[family], num_frames=frames))
    inspect_folder(config)
    (video,) = DiffusersGenerator(config, "cpu").generate(["a cat"], [0])
    assert video.frames.shape[0] == frames


@pytest.mark.parametrize(
    ("family", "overrides", "message"),
    [
        ("wan", {"num_frames": 8}, "4k\\+1 frames and would silently change 8; use 5 or 9"),
        ("ltx", {"num_frames": 10}, "4k\\+1 frames .* use 9 or 13"),
        ("cogvideox", {"num_frames": 10}, "only for 8k or 8k\\+1 frames"),
        ("wan", {"height": 40}, "divisible by 16; 40 is not"),
    ],
)
def test_counts_and_sizes_a_family_would_round_are_refused_with_the_nearest_valid(
    tiny_pipelines, family, overrides, message
):
    with pytest.raises(ValidationError, match=message):
        services.register_variant(
            name="x", config=variant_config(family, tiny_pipelines[family], **overrides)
        )
    assert not ModelVariant.objects.exists()


def test_each_refusal_has_its_own_message_and_writes_no_row(tiny_pipelines, tmp_path):
    ltx = tiny_pipelines["ltx"]
    unsupported = _copy_with_index(ltx, tmp_path / "sd", _class_name="StableDiffusionPipeline")
    deprecated = _copy_with_index(ltx, tmp_path / "t2v", _class_name="TextToVideoSDPipeline")
    cases = {
        "missing folder": (
            variant_config("ltx", tmp_path / "nowhere"),
            f"No folder at {tmp_path / 'nowhere'}",
        ),
        "hub id": ({"kind": "diffusers", "path": "Lightricks/LTX-Video"}, "looks like a hub id"),
        "unsupported class": (
            variant_config("ltx", unsupported),
            "StableDiffusionPipeline, which is not a text-to-video pipeline",
        ),
        "deprecated class": (
            variant_config("ltx", deprecated),
            "TextToVideoSDPipeline is deprecated",
        ),
        "LTX size": (
            variant_config("ltx", ltx, width=48),
            "LTXPipeline needs width divisible by 32",
        ),
        "unknown dtype": (variant_config("ltx", ltx, dtype="float8"), "dtype must be one of"),
        "unknown offload": (variant_config("ltx", ltx, offload="disk"), "offload must be one of"),
        "unknown attention": (
            variant_config("ltx", ltx, attention_backend="flash_hub"),
            "attention_backend must be one of",
        ),
        "emu recipe with no checkpoint": (
            {"kind": "emu", "schedule": "linear", "mode": "direct"},
            "No trained checkpoint for this recipe \\(video-direct-linear-frozen\\)",
        ),
    }
    messages = set()
    for label, (config, message) in cases.items():
        with pytest.raises(ValidationError, match=message) as caught:
            services.register_variant(name=label, config=config)
        messages.add(" ".join(caught.value.messages))
    assert len(messages) == len(cases)
    assert not ModelVariant.objects.exists()


def test_register_variant_command_exits_0_and_a_broken_config_exits_non_zero_with_its_reason(
    tiny_pipelines, tmp_path
):
    config = json.dumps(variant_config("wan", tiny_pipelines["wan"]))
    call_command("register_variant", "tiny-wan", config=config)
    assert ModelVariant.objects.get(slug="tiny-wan").config["path"] == str(tiny_pipelines["wan"])
    with pytest.raises(CommandError, match="No folder at /nowhere"):
        call_command(
            "register_variant", "bad", config=json.dumps(variant_config("wan", Path("/nowhere")))
        )

    # The real command line: exit status and message, no traceback.
    run = subprocess.run(
        [sys.executable, "manage.py", "register_variant", "bad", "--config", '{"kind": "x"}'],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        env={"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}", "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode != 0
    assert "kind must be one of emu, diffusers, imported; got 'x'" in run.stderr
    assert "Traceback" not in run.stderr


def test_the_admin_and_the_staff_page_show_a_bad_config_as_a_form_error(client, tiny_pipelines):
    client.force_login(StaffFactory())
    bad = json.dumps(variant_config("ltx", tiny_pipelines["ltx"], height=40))

    admin = client.post(
        reverse("admin:generation_modelvariant_add"),
        {"name": "Bad", "slug": "bad", "version": 1, "description": "", "config": bad},
    )
    page = client.post(reverse("generation:variants"), {"name": "Bad", "config": bad})
    garbage = client.post(
        reverse("admin:generation_modelvariant_add"), {"name": "x", "config": "]"}
    )

    for response in (admin, page, garbage):
        assert response.status_code == 200
    assert "LTXPipeline needs height divisible by 32" in admin.content.decode()
    assert "LTXPipeline needs height divisible by 32" in page.content.decode()
    assert not ModelVariant.objects.exists()

    good = json.dumps(variant_config("ltx", tiny_pipelines["ltx"]))
    done = client.post(reverse("generation:variants"), {"name": "Tiny LTX", "config": good})
    assert done.status_code == 302
    listing = client.get(reverse("generation:variants")).content.decode()
    assert "tiny-ltx" in listing and "Loads LTXPipeline" in listing


def test_a_config_error_that_reaches_a_worker_fails_the_job_at_once(tiny_pipelines, tmp_path):
    folder = shutil.copytree(tiny_pipelines["wan"], tmp_path / "wan")
    variant = services.get_or_create_variant(name="Wan", config=variant_config("wan", folder))
    prompt_set = services.get_or_create_prompt_set(name="p", prompts=["a cat", "a dog"])
    batch = services.create_batch(name="b", prompt_set=prompt_set, variants=[variant])
    shutil.rmtree(folder)  # the folder went away after registration

    outcome = services.render_chunk(job_ids=list(batch.jobs.values_list("pk", flat=True)))

    assert (outcome.failed, outcome.retry_job_ids) == (2, ())
    for job in batch.jobs.all():
        assert job.status == GenerationJob.Status.FAILED and job.attempts == 1
        assert job.error == f"Config error: No folder at {folder}."


def test_out_of_memory_with_one_video_per_batch_says_to_offload(monkeypatch, settings):
    settings.JUICE_JOB_MAX_ATTEMPTS = 1
    install(monkeypatch, FakeGenerator(fail_always=torch.cuda.OutOfMemoryError("CUDA oom")))
    variant = services.get_or_create_variant(name="Tiny", config={"steps": 1, "frames": 2})
    prompt_set = services.get_or_create_prompt_set(name="oom", prompts=["a cat"])
    batch = services.create_batch(
        name="b", prompt_set=prompt_set, variants=[variant], sample_batch=1
    )

    services.render_chunk(job_ids=list(batch.jobs.values_list("pk", flat=True)))

    job = batch.jobs.get()
    assert job.status == GenerationJob.Status.FAILED
    assert 'Set "offload" to "model", "group" or "sequential"' in job.error


def test_the_same_seed_gives_identical_frames_across_renders(tiny_pipelines):
    config = parse_config(variant_config("cogvideox", tiny_pipelines["cogvideox"]))
    first = DiffusersGenerator(config, "cpu").generate(["a cat", "a dog"], [7, 8])
    second = DiffusersGenerator(config, "cpu").generate(["a cat", "a dog"], [7, 8])
    other_seed = DiffusersGenerator(config, "cpu").generate(["a cat"], [9])

    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a.frames, b.frames)
    assert not np.array_equal(first[0].frames, other_seed[0].frames)


def test_a_process_keeps_the_most_recently_used_pipelines_and_drops_the_oldest(
    tiny_pipelines, monkeypatch
):
    monkeypatch.setenv("JUICE_MAX_LOADED_PIPELINES", "1")
    pipeline.clear_loaded()
    wan = parse_config(variant_config("wan", tiny_pipelines["wan"]))
    ltx = parse_config(variant_config("ltx", tiny_pipelines["ltx"]))

    first = pipeline.load_generator(wan)
    assert pipeline.load_generator(wan) is first, "reused while it is the most recent"
    pipeline.load_generator(ltx)

    assert first.pipe is None, "the older one let go of its weights"
    assert pipeline.load_generator(wan) is not first
    pipeline.clear_loaded()


def test_a_config_is_hashable_and_equal_by_value_including_extra():
    a = parse_config({"kind": "diffusers", "path": "/m", "extra": {"max_sequence_length": 16}})
    b = parse_config({"kind": "diffusers", "path": "/m", "extra": {"max_sequence_length": 16}})
    c = parse_config({"kind": "diffusers", "path": "/m", "extra": {"max_sequence_length": 32}})
    assert a == b and hash(a) == hash(b) and a != c
    with pytest.raises(ConfigError, match="extra must not set generator"):
        parse_config({"kind": "diffusers", "path": "/m", "extra": {"generator": 1}})


def test_recorded_videos_keep_the_frames_size_and_fps_the_pipeline_returned(tiny_pipelines):
    variant = services.get_or_create_variant(
        name="LTX 5 frames", config=variant_config("ltx", tiny_pipelines["ltx"], num_frames=5)
    )
    prompt_set = services.get_or_create_prompt_set(name="rec", prompts=["a cat"])
    batch = services.create_batch(name="b", prompt_set=prompt_set, variants=[variant])

    services.render_chunk(job_ids=list(batch.jobs.values_list("pk", flat=True)))

    video = Video.objects.get()
    assert (video.frames, video.height, video.width, video.fps) == (5, 32, 32, 8)
