"""Hostile variant configs: any JSON an admin pastes gives a ConfigError or a valid config."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generation.video.config import ConfigError, VariantConfig

FIELDS = [f.name for f in dataclasses.fields(VariantConfig)]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
# Mostly known keys, so the per-field checks are reached, not only the unknown-key check.
config_dicts = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=20), json_values, max_size=len(FIELDS)
)


def _outcome(data: object) -> VariantConfig | None:
    try:
        return VariantConfig.from_dict(data)  # type: ignore[arg-type]
    except ConfigError as exc:
        assert str(exc), "a ConfigError must say what is wrong"
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config_dicts)
def test_any_json_object_gives_a_valid_config_or_a_config_error(data):
    # Given an arbitrary JSON object, when it is parsed as a variant config
    config = _outcome(data)
    # Then it is either rejected with a ConfigError or is a config that validates and round-trips
    if config is not None:
        config.validate()
        assert VariantConfig.from_dict(config.to_dict()) == config
        json.dumps(config.to_dict(), allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_any_json_value_that_is_not_an_object_is_a_config_error(data):
    if isinstance(data, dict):
        _outcome(data)
        return
    with pytest.raises(ConfigError):
        VariantConfig.from_dict(data)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [
        {"steps": float("nan")},
        {"guidance_text": float("nan")},
        {"guidance_text": float("inf")},
        {"steps": 10**100},
        {"steps": True},
        {"height": "64"},
        {"mode": ["factorized"]},
        {"mode": "Factorized"},
        {"schedule": "zero_snr\x00"},
        {"checkpoint": 7},
        {"\u202emode": "direct"},
    ],
)
def test_known_bad_values_are_config_errors(data):
    with pytest.raises(ConfigError):
        VariantConfig.from_dict(data)
