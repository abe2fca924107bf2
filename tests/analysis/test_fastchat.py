"""FastChat's own rating code, unmodified, ranks `--format arena-json` like `--summary` does.

`fastchat.serve.monitor.elo_analysis` imports `fastchat.model` only for `get_model_info`, a
display helper of the leaderboard; that package loads model-serving code (accelerate, torch,
transformers, peft), which this project does not install. The test puts a stand-in for that
one helper in `sys.modules`; every rating function runs as FastChat ships it.
"""

import json
import sys
import types

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from analysis import export
from raters.models import Assignment, Comparison, Rater
from tests.factories import (
    AssignmentFactory,
    JudgmentFactory,
    ModelVariantFactory,
    PromptFactory,
    StudyFactory,
    UserFactory,
    VariantPairFactory,
    VideoFactory,
)

pytestmark = pytest.mark.django_db
# P(the first variant of each pair wins) per question: a clear order emu > mid > low > base.
STRENGTH = {"emu": 3.0, "mid": 2.0, "low": 1.0, "base": 0.0}
PAIRS = (("emu", "mid"), ("emu", "low"), ("emu", "base"), ("mid", "low"), ("low", "base"))


@pytest.fixture(scope="module")
def elo_analysis():
    if "fastchat.model" not in sys.modules:
        stand_in = types.ModuleType("fastchat.model")
        stand_in.__path__ = []
        registry = types.ModuleType("fastchat.model.model_registry")
        registry.get_model_info = lambda name: None
        sys.modules["fastchat.model"] = stand_in
        sys.modules["fastchat.model.model_registry"] = registry
    from fastchat.serve.monitor import elo_analysis

    return elo_analysis


def _rated_study(prompts: int = 12, raters: int = 5) -> None:
    rng = np.random.default_rng(7)
    study = StudyFactory(slug="arena")
    variants = {name: ModelVariantFactory(slug=name, name=name) for name in STRENGTH}
    users = [UserFactory() for _ in range(raters)]
    Rater.objects.create(user=users[0], external_id="p0")
    batch = study.batches.get()
    prompt_rows = [PromptFactory(prompt_set=batch.prompt_set) for _ in range(prompts)]
    videos = {
        (name, p): VideoFactory(job__batch=batch, job__variant=variant, job__prompt=prompt)
        for name, variant in variants.items()
        for p, prompt in enumerate(prompt_rows)
    }
    for a, b in PAIRS:
        pair = VariantPairFactory(study=study, variant_a=variants[a], variant_b=variants[b])
        p_a = 1 / (1 + np.exp(-(STRENGTH[a] - STRENGTH[b])))
        for p, prompt in enumerate(prompt_rows):
            comparison = Comparison.objects.create(
                study=study, pair=pair, prompt=prompt, video_a=videos[a, p], video_b=videos[b, p]
            )
            for user in users:
                answers = ["a" if rng.random() < p_a else "b" for _ in range(2)]
                if rng.random() < 0.1:
                    answers[0] = "tie"
                JudgmentFactory(
                    assignment=AssignmentFactory(
                        comparison=comparison,
                        rater=user,
                        left_is_a=bool(rng.integers(0, 2)),
                        status=Assignment.Status.DONE,
                    ),
                    quality=answers[0],
                    quality_reasons=["equally_good"]
                    if answers[0] == "tie"
                    else ["pixel_sharpness"],
                    faithfulness=answers[1],
                )


@pytest.mark.parametrize("question", ["quality", "faithfulness"])
def test_fastchat_ranks_the_arena_export_like_the_summary(tmp_path, elo_analysis, question):
    # given a study of five pairs over four variants, exported for one question
    _rated_study()
    arena = tmp_path / f"{question}.json"
    call_command(
        "export_results", "--study", "arena", "--format", "arena-json", "--question", question,
        "--output", str(arena), "--summary", "--rounds", "50",
    )  # fmt: skip

    # when FastChat's Bradley–Terry fit (logistic regression, ties as half) reads the battles
    battles = pd.DataFrame(json.loads(arena.read_text()))
    fastchat = elo_analysis.compute_elo_mle_with_tie(battles)

    # then its ranking equals the one `--summary` printed beside the export
    ratings = pd.read_csv(export.ratings_path(arena))
    ours = ratings[ratings["question"] == question].sort_values("strength", ascending=False)
    expected = [f"{name}@v1" for name in sorted(STRENGTH, key=STRENGTH.get, reverse=True)]
    assert list(fastchat.index) == list(ours["variant"]) == expected
    # and FastChat sees every pair in both orders (model_a is whoever was on the left)
    assert len(set(zip(battles["model_a"], battles["model_b"], strict=True))) == 2 * len(PAIRS)
