"""Variants are immutable once used in a batch: an edit becomes a new version."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from generation import services
from generation.models import ModelVariant
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db
TINY = {"mode": "factorized", "schedule": "zero_snr", "steps": 1, "frames": 2}


def use_in_batch(variant: ModelVariant) -> None:
    prompt_set = services.get_or_create_prompt_set(name="p", prompts=["a"])
    services.create_batch(name="b", prompt_set=prompt_set, variants=[variant])


def test_a_used_variant_refuses_a_config_change_but_an_unused_one_accepts_it():
    used = services.get_or_create_variant(name="Used", config=TINY)
    fresh = services.get_or_create_variant(name="Fresh", config=TINY)
    use_in_batch(used)

    with pytest.raises(ValidationError, match="save the change as a new version"):
        services.check_variant_editable(variant=used, config={**TINY, "steps": 5})
    services.check_variant_editable(variant=used, config=TINY)  # unchanged: fine
    services.check_variant_editable(variant=fresh, config={**TINY, "steps": 5})


def test_registering_a_changed_config_under_a_used_slug_makes_a_new_version():
    v1 = services.get_or_create_variant(name="Tiny", config=TINY)
    use_in_batch(v1)

    v2 = services.get_or_create_variant(name="Tiny", config={**TINY, "steps": 3})

    assert (v1.version, v2.version) == (1, 2)
    v1.refresh_from_db()
    assert v1.config["steps"] == 1 and v2.config["steps"] == 3


def test_the_admin_freezes_a_used_variant_and_copies_it_as_a_new_version(client):
    client.force_login(StaffFactory())
    variant = services.get_or_create_variant(name="Tiny", config=TINY)
    use_in_batch(variant)
    change_url = reverse("admin:generation_modelvariant_change", args=[variant.pk])

    page = client.get(change_url).content.decode()
    assert 'name="config"' not in page, "config must be read-only once used"

    client.post(
        reverse("admin:generation_modelvariant_changelist"),
        {"action": "new_version", "_selected_action": [variant.pk]},
    )
    copy = ModelVariant.objects.get(slug=variant.slug, version=2)
    assert copy.config == variant.config
    assert (
        'name="config"'
        in client.get(
            reverse("admin:generation_modelvariant_change", args=[copy.pk])
        ).content.decode()
    )


def test_the_admin_launch_action_opens_the_launch_page_with_the_variants(client):
    client.force_login(StaffFactory())
    a = services.get_or_create_variant(name="A", config=TINY)
    b = services.get_or_create_variant(name="B", config=TINY)

    response = client.post(
        reverse("admin:generation_modelvariant_changelist"),
        {"action": "launch_batch", "_selected_action": [a.pk, b.pk]},
    )

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("generation:launch") + "?variants=")
    assert {f"variants={a.pk}", f"variants={b.pk}"} <= set(
        response["Location"].split("?")[1].split("&")
    )
