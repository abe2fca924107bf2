"""Staff pages: launch from an upload, progress JSON, actions; nothing for non-staff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from generation import services, tasks
from generation.models import GenerationBatch, GenerationJob, PromptSet
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db
Status = GenerationJob.Status
TINY = {"mode": "factorized", "schedule": "zero_snr", "steps": 1, "frames": 2}


@pytest.fixture
def sent(monkeypatch) -> list[list[int]]:  # type: ignore[no-untyped-def]
    messages: list[list[int]] = []
    monkeypatch.setattr(tasks.render_chunk, "delay_on_commit", lambda ids: messages.append(ids))
    return messages


@pytest.fixture
def staff_client(client):  # type: ignore[no-untyped-def]
    client.force_login(StaffFactory())
    return client


def launch_data(variant, upload, **extra):  # type: ignore[no-untyped-def]
    return {
        "name": "ablation a",
        "variants": [variant.pk],
        "prompt_file": upload,
        "seeds": 2,
        "chunk_size": 8,
        "sample_batch": 4,
        **extra,
    }


def test_launching_from_an_uploaded_csv_creates_the_batch_and_sends_its_chunks(staff_client, sent):
    variant = services.get_or_create_variant(name="Tiny", config=TINY)
    upload = SimpleUploadedFile("p.csv", b"id,prompt,category\na,a cat,animal\nb,a dog,animal\n")

    response = staff_client.post(reverse("generation:launch"), launch_data(variant, upload))

    batch = GenerationBatch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("generation:batch", args=[batch.pk])
    assert batch.jobs.count() == 4 and batch.seeds == 2
    assert list(batch.prompt_set.prompts.values_list("external_id", "category")) == [
        ("a", "animal"),
        ("b", "animal"),
    ]
    assert [len(ids) for ids in sent] == [4]


def test_a_bad_upload_shows_the_specific_error_and_creates_nothing(staff_client, sent):
    variant = services.get_or_create_variant(name="Tiny", config=TINY)
    upload = SimpleUploadedFile("p.csv", b"text\na cat\n")

    response = staff_client.post(reverse("generation:launch"), launch_data(variant, upload))

    assert response.status_code == 200
    assert "no &#x27;prompt&#x27; column" in response.content.decode()
    assert not PromptSet.objects.exists() and not GenerationBatch.objects.exists() and not sent


def test_the_launch_page_lists_variants_and_preselects_those_from_the_admin_action(staff_client):
    one = services.get_or_create_variant(name="One", config=TINY)
    two = services.get_or_create_variant(name="Two", config={**TINY, "mode": "direct"})

    page = staff_client.get(reverse("generation:launch"), {"variants": [two.pk]}).content.decode()

    assert "One (v1)" in page and "Two (v1)" in page
    assert f'value="{two.pk}" id="id_variants_1" checked' in page
    assert f'value="{one.pk}" id="id_variants_0" checked' not in page


def test_progress_json_reports_per_variant_counts_throughput_and_failures(staff_client, sent):
    variant = services.get_or_create_variant(name="Tiny", config=TINY)
    prompt_set = services.get_or_create_prompt_set(name="p", prompts=["a", "b", "c", "d"])
    batch = services.create_batch(name="b", prompt_set=prompt_set, variants=[variant])
    a, b, c, d = batch.jobs.order_by("pk")
    now = timezone.now()
    GenerationJob.objects.filter(pk__in=[a.pk, b.pk]).update(
        status=Status.DONE, started_at=now - timedelta(seconds=60), finished_at=now
    )
    GenerationJob.objects.filter(pk=c.pk).update(
        status=Status.FAILED, error="RuntimeError: NaN", attempts=3, finished_at=now
    )

    report = staff_client.get(reverse("generation:batch-progress", args=[batch.pk])).json()

    assert (report["total"], report["done"], report["failed"], report["queued"]) == (4, 2, 1, 1)
    assert report["percent"] == 75.0
    # Two videos in the last minute: 2 per minute, so the one queued job needs about 30 s.
    assert report["throughput_per_min"] == pytest.approx(2.0, rel=0.05)
    assert report["eta_seconds"] == pytest.approx(30, abs=2)
    assert report["variants"][0] | {"throughput_per_min": 0} == {
        "id": variant.pk,
        "name": "Tiny (v1)",
        "total": 4,
        "queued": 1,
        "running": 0,
        "done": 2,
        "failed": 1,
        "cancelled": 0,
        "throughput_per_min": 0,
    }
    assert report["failures"] == [
        {
            "job": c.pk,
            "variant": "Tiny (v1)",
            "prompt": "c",
            "seed": 0,
            "attempts": 3,
            "status": "failed",
            "error": "RuntimeError: NaN",
        }
    ]


def test_cancel_resume_and_retry_failed_from_the_progress_page(staff_client, sent):
    variant = services.get_or_create_variant(name="Tiny", config=TINY)
    prompt_set = services.get_or_create_prompt_set(name="p", prompts=["a", "b", "c"])
    batch = services.create_batch(name="b", prompt_set=prompt_set, variants=[variant])
    sent.clear()

    def act(action: str) -> None:
        url = reverse("generation:batch-action", args=[batch.pk, action])
        assert staff_client.post(url).status_code == 302

    act("cancel")
    assert set(batch.jobs.values_list("status", flat=True)) == {Status.CANCELLED}
    act("resume")
    assert set(batch.jobs.values_list("status", flat=True)) == {Status.QUEUED}
    assert [len(ids) for ids in sent] == [3]
    batch.jobs.filter(seed=0).update(status=Status.FAILED, attempts=3)
    sent.clear()
    act("retry_failed")
    assert set(batch.jobs.values_list("status", "attempts")) == {(Status.QUEUED, 0)}
    assert [len(ids) for ids in sent] == [3]


@pytest.mark.parametrize("name", ["launch", "batch", "batch-progress"])
def test_non_staff_get_403_and_anonymous_users_the_login_page(client, name):
    batch_args = [] if name == "launch" else [1]
    url = reverse(f"generation:{name}", args=batch_args)
    assert client.get(url).status_code == 302
    client.force_login(UserFactory())
    assert client.get(url).status_code == 403


def test_actions_need_staff_and_post(client, staff_client):
    variant = services.get_or_create_variant(name="Tiny", config=TINY)
    prompt_set = services.get_or_create_prompt_set(name="p", prompts=["a"])
    batch = GenerationBatch.objects.create(name="b", prompt_set=prompt_set)
    batch.variants.set([variant])
    url = reverse("generation:batch-action", args=[batch.pk, "cancel"])
    rater_client = Client()
    rater_client.force_login(UserFactory())
    assert rater_client.post(url).status_code == 403
    assert staff_client.get(url).status_code == 405
    bogus = reverse("generation:batch-action", args=[batch.pk, "delete"])
    assert staff_client.post(bogus).status_code == 403
    batch.refresh_from_db()
    assert batch.status == GenerationBatch.Status.RUNNING


def test_out_of_range_ids_are_form_errors_and_404s_not_server_errors(staff_client, sent):
    services.get_or_create_variant(name="Tiny", config=TINY)
    huge = str(2**70)

    response = staff_client.post(
        reverse("generation:launch"),
        {
            "name": "x",
            "variants": [huge],
            "prompt_set": huge,
            "seeds": 1,
            "chunk_size": 8,
            "sample_batch": 4,
        },
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "is not one of the variants" in page and "Select one of the prompt sets" in page
    assert staff_client.get(f"/staff/generation/batches/{huge}/").status_code == 404
    assert staff_client.get(f"/staff/generation/batches/{huge}/progress.json").status_code == 404
    assert not GenerationBatch.objects.exists()


def test_the_batch_page_lists_every_failed_job_with_its_reason(staff_client, sent):
    variant = services.get_or_create_variant(name="Tiny", config=TINY)
    texts = [f"prompt {i}" for i in range(14)]
    prompt_set = services.get_or_create_prompt_set(name="p", prompts=texts)
    batch = services.create_batch(name="b", prompt_set=prompt_set, variants=[variant])
    for job in batch.jobs.all():
        GenerationJob.objects.filter(pk=job.pk).update(
            status=Status.FAILED, error=f"ValueError: bad input {job.pk}", attempts=3
        )

    page = staff_client.get(reverse("generation:batch", args=[batch.pk])).content.decode()

    # More than the ten most recent: each one, with its own reason.
    for job in batch.jobs.all():
        assert f"ValueError: bad input {job.pk}" in page


def test_progress_json_lists_each_running_job(staff_client, sent):
    variant = services.get_or_create_variant(name="Tiny", config=TINY)
    prompt_set = services.get_or_create_prompt_set(name="p", prompts=["a", "b"])
    batch = services.create_batch(name="b", prompt_set=prompt_set, variants=[variant])
    first = batch.jobs.order_by("pk").first()
    GenerationJob.objects.filter(pk=first.pk).update(
        status=Status.RUNNING, worker="gpu0@host", started_at=timezone.now() - timedelta(seconds=42)
    )

    report = staff_client.get(reverse("generation:batch-progress", args=[batch.pk])).json()

    (row,) = report["running_jobs"]
    assert (row["job"], row["prompt"], row["worker"]) == (first.pk, "a", "gpu0@host")
    assert 41 <= row["seconds"] <= 44
