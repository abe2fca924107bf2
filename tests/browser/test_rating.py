"""The rating page in headless Chromium: real MP4s decoded, one clock, keyboard-only flow."""

from __future__ import annotations

import pytest

from raters import services
from raters.models import Judgment, Rater
from tests.browser.helpers import ARTIFACTS, BOTH_READY, TIMES, login, wait_submit_enabled
from tests.factories import UserFactory
from tests.raters.helpers import build_study, right_quiz_answers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_rater_logs_in_sees_decoded_videos_and_submits_one_justified_judgment(page, live_server):
    study = build_study(prompts=3, raters_per_pair=1)
    rater = UserFactory()
    services.qualify_rater(user=rater)
    login(page, live_server, rater)
    page.goto(f"{live_server.url}/rate/{study.slug}/")

    page.wait_for_function(BOTH_READY, timeout=15000)
    assert page.locator("#progress").inner_text() == "Task 1 of 3"
    wait_submit_enabled(page)

    # A choice without a reason is refused by the server, with a visible message.
    page.check("input[name=quality][value=left]")
    page.check("input[name=faithfulness][value=right]")
    page.check("input[name=faithfulness_reasons][value=spatial_alignment]")
    page.click("#submit")
    page.wait_for_selector("#form-errors:not([hidden])")
    assert "at least one reason" in page.locator("#form-errors").inner_text()
    assert Judgment.objects.count() == 0

    page.check("input[name=quality_reasons][value=motion_smoothness]")
    page.click("#submit")
    page.wait_for_function(
        "() => document.getElementById('progress').innerText === 'Task 2 of 3'", timeout=10000
    )
    judgment = Judgment.objects.get()
    assert judgment.quality_reasons == ["motion_smoothness"]
    assert judgment.played_through and judgment.watch_ms >= study.min_watch_ms
    assert page.outside_requests == []


def test_new_crowd_rater_quiz_five_tasks_by_keyboard_resume_and_completion_code(page, live_server):
    study = build_study(prompts=5, raters_per_pair=1, require_qualification=True, min_watch_ms=1500)
    study.break_every = 2
    study.save()
    page.goto(f"{live_server.url}/rate/start/{study.slug}/?PROLIFIC_PID=worker-77")
    page.click("#start-submit")
    page.click("#to-quiz")
    worker = Rater.objects.get(external_id="worker-77").user
    for key, value in right_quiz_answers(worker).items():
        page.check(f"input[name={key}][value={value}]")
    page.click("#quiz-submit")
    page.wait_for_selector("#video-left")

    tokens = []
    for task in range(5):
        page.wait_for_function(BOTH_READY, timeout=15000)
        token = page.input_value("#token")
        if task == 2:
            page.keyboard.press("e")
            page.keyboard.press("3")
            page.reload()
            page.wait_for_function(BOTH_READY, timeout=15000)
            assert page.input_value("#token") == token, "reload resumes the same pair"
            assert page.is_checked("input[name=quality][value=right]"), "and the answers given"
            assert page.is_checked("input[name=quality_reasons][value=recognizable_objects]")
            page.keyboard.press("3")  # back to the answers every task gets below
        assert page.locator("#progress").inner_text() == f"Task {task + 1} of 5"
        wait_submit_enabled(page)
        for key in ("q", "1", "a", "6", "Enter"):
            page.keyboard.press(key)
        tokens.append(token)
        if task < 4:
            page.wait_for_function(
                f"() => document.getElementById('token').value !== '{token}'", timeout=10000
            )
        if task in (1, 3):
            # The break reminder after two in a row (counted from the reload), by keyboard.
            assert page.locator("#break").is_visible()
            page.keyboard.press("Enter")
            assert page.locator("#break").is_hidden()
    page.wait_for_selector("#completion-code", timeout=10000)
    assert page.locator("#completion-code").inner_text() == study.completion_code
    assert len(set(tokens)) == 5
    judged = Judgment.objects.filter(assignment__rater__rater__external_id="worker-77")
    assert judged.count() == 5
    assert all(j.quality_reasons == ["pixel_sharpness"] for j in judged)
    assert page.outside_requests == []


def test_one_clock_gate_tie_reason_and_screenshots(page, live_server):
    study = build_study(prompts=2, raters_per_pair=1, frames=24, fps=12, min_watch_ms=1500)
    rater = UserFactory()
    services.qualify_rater(user=rater)
    login(page, live_server, rater)
    page.goto(f"{live_server.url}/rate/{study.slug}/")
    page.wait_for_function(BOTH_READY, timeout=15000)
    frame = 1 / 12

    # Submit stays disabled until both clips have played through once.
    assert page.locator("#submit").is_disabled()
    page.wait_for_function("() => document.getElementById('video-left').currentTime > 0.3")
    left, right = page.evaluate(TIMES)
    assert abs(left - right) <= frame, "after play"
    assert page.locator("#submit").is_disabled()

    page.keyboard.press(" ")  # pause
    left, right = page.evaluate(TIMES)
    assert abs(left - right) <= frame, "after pause"
    page.evaluate("() => window.juicePlayer.seek(1.3)")
    page.wait_for_function(
        "() => !document.getElementById('video-left').seeking "
        "&& !document.getElementById('video-right').seeking"
    )
    left, right = page.evaluate(TIMES)
    assert abs(left - 1.3) < frame and abs(left - right) <= frame, "after seek"
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(100)
    stepped_left, stepped_right = page.evaluate(TIMES)
    assert abs(stepped_left - stepped_right) <= frame, "after frame step"
    assert stepped_left == pytest.approx(left + 2 * frame, abs=frame / 2 + 1e-3)

    page.keyboard.press("f")  # flick: one place, one side visible
    assert page.locator("#fig-right").evaluate("e => getComputedStyle(e).visibility") == "hidden"
    page.keyboard.press("f")
    assert page.locator("#fig-left").evaluate("e => getComputedStyle(e).visibility") == "hidden"
    page.keyboard.press("Escape")
    assert page.locator("#fig-left").evaluate("e => getComputedStyle(e).visibility") == "visible"
    page.keyboard.press("v")
    rates = "() => ['video-left','video-right'].map(id => document.getElementById(id).playbackRate)"
    assert page.evaluate(rates) == [0.5, 0.5]
    page.keyboard.press("v")
    assert page.evaluate(rates) == [1, 1]

    page.keyboard.press(" ")  # play again, through to the end
    wait_submit_enabled(page)
    for key in ("q", "1", "2", "d", "7"):
        page.keyboard.press(key)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "rating-page.png"))

    # A tie without a reason is refused (choosing tie clears the side's reasons).
    page.keyboard.press("w")
    assert page.locator("#q-quality .tie-reasons").is_visible()
    page.keyboard.press("Enter")
    page.wait_for_selector("#form-errors:not([hidden])")
    assert "reason" in page.locator("#form-errors").inner_text()
    assert Judgment.objects.count() == 0

    page.keyboard.press("1")  # equally good
    page.screenshot(path=str(ARTIFACTS / "rating-1366x768.png"))
    box = page.locator("#submit").bounding_box()
    assert box["y"] + box["height"] <= 768, "everything fits a laptop screen without scrolling"
    page.set_viewport_size({"width": 844, "height": 390})
    page.wait_for_timeout(100)
    page.screenshot(path=str(ARTIFACTS / "rating-844x390.png"), full_page=True)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 844, "no sideways scrolling on a phone held sideways"
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.getElementById('progress').innerText === 'Task 2 of 2'", timeout=10000
    )
    judgment = Judgment.objects.get()
    assert judgment.quality == "tie" and judgment.quality_reasons == ["equally_good"]
    assert judgment.faithfulness_reasons == ["temporal_alignment"]


def test_clips_of_different_length_are_served_cut_to_one_length_on_one_clock(page, live_server):
    # Variant B renders 36 frames, A 24, both at 12 fps: both are served as 24 frames (2 s), B's
    # taken from its middle (0.5 s to 2.5 s) when the study prepared the pair's presentation.
    study = build_study(prompts=1, frames=24, frames_b=36, fps=12, min_watch_ms=1500)
    rater = UserFactory()
    services.qualify_rater(user=rater)
    login(page, live_server, rater)
    page.goto(f"{live_server.url}/rate/{study.slug}/")
    page.wait_for_function(BOTH_READY, timeout=15000)
    durations = page.evaluate(
        "() => ['video-left','video-right'].map(id => document.getElementById(id).duration)"
    )
    assert durations[0] == pytest.approx(2.0, abs=0.05)
    assert durations[1] == pytest.approx(durations[0], abs=1e-3)
    page.evaluate("() => { window.juicePlayer.pause(); window.juicePlayer.seek(1.0); }")
    page.wait_for_timeout(150)
    left, right = page.evaluate(TIMES)
    assert left == pytest.approx(1.0, abs=1 / 12) and right == pytest.approx(left, abs=1 / 12)
    page.keyboard.press(" ")
    wait_submit_enabled(page)  # the clock ends with both clips


def test_submit_unlocks_on_the_servers_watch_minimum_and_a_submit_at_unlock_is_accepted(
    page, live_server
):
    # Given 1 s clips and a study that asks for 2.0 s of watching
    study = build_study(prompts=2, raters_per_pair=1, frames=8, fps=8, min_watch_ms=2000)
    rater = UserFactory()
    services.qualify_rater(user=rater)
    login(page, live_server, rater)
    page.goto(f"{live_server.url}/rate/{study.slug}/")
    page.wait_for_function(BOTH_READY, timeout=15000)
    # When both clips have played through once, Submit is still locked
    page.wait_for_function(
        "() => document.getElementById('watch-status').innerText.startsWith('Keep watching')",
        timeout=15000,
    )
    assert page.locator("#submit").is_disabled()
    # Then a keyboard rater who answers the moment it unlocks is accepted
    for key in ("q", "1", "a", "6"):
        page.keyboard.press(key)
    wait_submit_enabled(page)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.getElementById('progress').innerText === 'Task 2 of 2'", timeout=10000
    )
    judgment = Judgment.objects.get()
    assert judgment.watch_ms >= study.min_watch_ms
    assert page.locator("#form-errors").is_hidden()


def test_enter_with_no_choice_names_each_question(page, live_server):
    study = build_study(prompts=1, raters_per_pair=1)
    rater = UserFactory()
    services.qualify_rater(user=rater)
    login(page, live_server, rater)
    page.goto(f"{live_server.url}/rate/{study.slug}/")
    page.wait_for_function(BOTH_READY, timeout=15000)
    wait_submit_enabled(page)
    page.keyboard.press("Enter")
    page.wait_for_selector("#form-errors:not([hidden])")
    shown = page.locator("#form-errors").inner_text()
    assert "Quality (Which video do you prefer?)" in shown
    assert "Faithfulness (Which video aligns better with the text prompt?)" in shown
    assert '"" is not a valid choice' not in shown


def test_padded_gold_clips_and_posters_decode_in_chromium(page, live_server):
    # Given gold clips and posters padded to the byte sizes of real videos (`free` MP4 box,
    # private PNG chunk)
    import base64

    from raters.models import GoldClip
    from tests.raters.test_gold_blinding import _study

    _study(prompts=4)  # real videos and posters, 8 gold checks
    clips = list(GoldClip.objects.all())
    padded_videos = [c for c in clips if c.file.open("rb").read()[-4096:].find(b"free") >= 0]
    padded_posters = [c for c in clips if b"juPd" in c.poster.open("rb").read()]
    assert padded_videos and padded_posters
    page.goto(f"{live_server.url}/accounts/login/")
    # Then Chromium decodes every one of them
    for clip in clips:
        video = base64.b64encode(clip.file.open("rb").read()).decode()
        poster = base64.b64encode(clip.poster.open("rb").read()).decode()
        sizes = page.evaluate(
            """([video, poster]) => Promise.all([
                new Promise(done => { const v = document.createElement('video'); v.muted = true;
                  v.onloadeddata = () => done(v.videoWidth); v.onerror = () => done(0);
                  v.src = 'data:video/mp4;base64,' + video; }),
                new Promise(done => { const i = new Image(); i.onload = () => done(i.naturalWidth);
                  i.onerror = () => done(0); i.src = 'data:image/png;base64,' + poster; }),
            ])""",
            [video, poster],
        )
        assert all(size > 0 for size in sizes), (clip.get_degradation_display(), sizes)
