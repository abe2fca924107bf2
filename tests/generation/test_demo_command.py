"""`make demo`: the port is checked before anything starts, and the worker stops on any exit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from evalsite import demo
from generation.management.commands import demo as demo_command


class FakeWorker:
    def __init__(self) -> None:
        self.terminated = False

    def poll(self) -> int | None:
        return 0 if self.terminated else None

    def terminate(self) -> None:
        self.terminated = True

    def wait(self, timeout: float | None = None) -> int:
        return 0


@pytest.fixture
def started(monkeypatch) -> list[FakeWorker]:  # type: ignore[no-untyped-def]
    workers: list[FakeWorker] = []

    def start_worker() -> Any:
        workers.append(FakeWorker())
        return workers[-1]

    monkeypatch.setattr(demo, "start_worker", start_worker)
    monkeypatch.setattr(demo, "ensure_users", lambda: None)
    monkeypatch.setattr(demo, "ensure_batch", lambda: (object(), ()))
    monkeypatch.setattr(demo_command, "call_command", lambda *a, **k: None)
    return workers


def test_a_busy_port_is_refused_before_a_worker_starts(started):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        with pytest.raises(CommandError) as refused:
            call_command("demo", "--addrport", f"127.0.0.1:{port}")

    assert f"Port {port}" in str(refused.value) and f"PORT={port + 1}" in str(refused.value)
    assert started == []


def test_the_worker_is_stopped_when_the_demo_fails(started, monkeypatch):
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("generation blew up")

    monkeypatch.setattr(demo, "wait_for_batch", broken)

    with pytest.raises(RuntimeError):
        call_command("demo", "--no-serve")

    assert len(started) == 1 and started[0].terminated


def test_the_worker_is_stopped_when_the_demo_is_killed(started, monkeypatch):
    def killed(*args: Any, **kwargs: Any) -> Any:
        demo_command._exit_on_signal(15, None)  # what the SIGTERM handler does

    monkeypatch.setattr(demo, "wait_for_batch", killed)

    with pytest.raises(SystemExit):
        call_command("demo", "--no-serve")

    assert started[0].terminated


def test_a_real_worker_process_dies_with_its_parent(tmp_path):
    """PR_SET_PDEATHSIG: a child started as the worker is gets SIGTERM when its parent is
    killed with SIGKILL, where no `finally` runs."""
    pid_file = tmp_path / "child.pid"
    script = (
        "import os, subprocess, time, django\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'evalsite.settings')\n"
        "django.setup()\n"
        "from evalsite.demo import _die_with_parent\n"
        "child = subprocess.Popen(['sleep', '60'], preexec_fn=_die_with_parent)\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=settings.BASE_DIR)
    try:
        deadline = time.monotonic() + 20
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(pid_file.read_text())
        parent.kill()
        parent.wait()
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        alive = _alive(child)
        if alive:
            os.kill(child, signal.SIGKILL)
        assert not alive, "the child outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for init to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_demo_worker_leaves_a_core_to_the_web_server_unless_told_otherwise():
    # torch's threads spin while they wait for a busy core: on two cores the worker takes one
    env = demo.worker_environment({"PATH": "/bin"}, cpus=2)
    assert env["OMP_NUM_THREADS"] == "1" and env["PATH"] == "/bin"
    assert env["DJANGO_SETTINGS_MODULE"] == "evalsite.settings"
    assert demo.worker_environment({}, cpus=16)["OMP_NUM_THREADS"] == "15"
    assert demo.worker_environment({}, cpus=None)["OMP_NUM_THREADS"] == "1"
    # an operator's own setting wins
    assert demo.worker_environment({"OMP_NUM_THREADS": "4"}, cpus=2)["OMP_NUM_THREADS"] == "4"


@pytest.mark.django_db
def test_an_earlier_demo_study_of_other_variants_is_kept_aside_and_a_new_one_built():
    from raters import services
    from raters.models import Judgment
    from tests.raters.helpers import build_study, judge, qualified_rater

    # given a demo study that compared other variants (an earlier demo's versions), rated once
    earlier = build_study(prompts=2, slug=demo.STUDY_SLUG)
    judge(services.next_assignment(study=earlier, rater=qualified_rater()))
    # and this demo's batch of two new variants
    other = build_study(prompts=3, slug="today")
    pair = other.pairs.get()
    variants = (pair.variant_a, pair.variant_b)
    # when the demo's study is ensured
    study, moved = demo.ensure_study(other.batches.get(), variants)
    # then the demo slug names a new study of the new variants
    assert study.slug == demo.STUDY_SLUG and study.pk != earlier.pk
    assert list(study.pairs.values_list("variant_a", "variant_b")) == [
        (variants[0].pk, variants[1].pk)
    ]
    # and the earlier one is kept, judgment included, under a slug of its own
    earlier.refresh_from_db()
    assert moved == earlier.slug == f"{demo.STUDY_SLUG}-earlier-1"
    assert Judgment.objects.filter(assignment__comparison__study=earlier).count() == 1
    # and a second run changes nothing
    again, moved_again = demo.ensure_study(other.batches.get(), variants)
    assert again.pk == study.pk and moved_again is None


@pytest.mark.django_db
def test_the_demo_batch_of_this_demos_variants_is_found_beside_an_earlier_ones(monkeypatch):
    from generation import services as generation_services
    from tests.factories import GenerationBatchFactory, ModelVariantFactory

    created = []

    def create_batch(**kwargs: Any) -> Any:
        batch = GenerationBatchFactory(name=kwargs["name"], prompt_set=kwargs["prompt_set"])
        batch.variants.set(kwargs["variants"])
        created.append(batch)
        return batch

    monkeypatch.setattr(generation_services, "create_batch", create_batch)
    monkeypatch.setattr(generation_services, "launch_batch", lambda batch: None)
    # given the batch an earlier demo made, of other variants (older versions)
    prompt_set = generation_services.get_or_create_prompt_set(
        name="Demo prompts", prompts=demo.PROMPTS
    )
    earlier = GenerationBatchFactory(name="demo", prompt_set=prompt_set)
    earlier.variants.set([ModelVariantFactory(), ModelVariantFactory()])
    # when the demo runs twice
    first, variants = demo.ensure_batch()
    second, _ = demo.ensure_batch()
    # then one batch of this demo's variants was made, and the second run found it
    assert len(created) == 1 and first == second == created[0]
    assert set(second.variants.all()) == set(variants) and first != earlier
