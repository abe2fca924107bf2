"""The qualification quiz cannot be passed by position: options shuffled per rater, drawn from
several variants, right answers spread over the positions; a failed attempt explains itself."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from raters import quiz, selectors, services
from raters.models import Rater
from tests.factories import UserFactory
from tests.raters.helpers import build_study, right_quiz_answers

pytestmark = pytest.mark.django_db


def _shown(page: str) -> dict[str, list[str]]:
    """Option values per question, in the order the page shows them."""
    shown: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="radio" name="(\w+)" value="(\w+)"', page):
        shown.setdefault(name, []).append(value)
    return shown


@pytest.mark.parametrize("position", [0, 1, 2])
def test_always_answering_the_same_position_fails_every_attempt(position):
    study = build_study(prompts=1, require_qualification=True)
    for worker in range(8):
        client = Client()
        client.post(f"/rate/start/{study.slug}/?PROLIFIC_PID=pos{position}-{worker}")
        for _attempt in range(quiz.MAX_ATTEMPTS):
            shown = _shown(client.get(f"/rate/{study.slug}/quiz/").content.decode())
            assert len(shown) == len(quiz.QUESTIONS)
            answers = {key: values[position] for key, values in shown.items()}
            response = client.post(f"/rate/{study.slug}/quiz/", answers)
            assert response.status_code in (400, 403), "a position-only answer sheet passed"
        assert not Rater.objects.get(external_id=f"pos{position}-{worker}").is_qualified


def test_options_are_shuffled_per_rater_and_drawn_from_more_than_one_variant():
    papers = [
        selectors.quiz_paper(rater=services.rater_profile(user=UserFactory())) for _ in range(20)
    ]
    for index, question in enumerate(quiz.QUESTIONS):
        assert len(question.variants) >= 2
        texts = {paper[index].text for paper in papers}
        assert len(texts) >= 2, f"{question.key}: one variant for 20 raters"
        right_at = {
            [v for v, _ in paper[index].options].index(paper[index].answer) for paper in papers
        }
        assert len(right_at) >= 2, f"{question.key}: the right answer always in one place"
    # Values are opaque per paper: the same option has different values for two raters
    values = {paper[0].answer for paper in papers}
    assert len(values) > 1


def test_a_reload_shows_the_same_paper_and_the_next_attempt_a_new_one():
    study = build_study(prompts=1, require_qualification=True)
    client = Client()
    client.post(f"/rate/start/{study.slug}/?PROLIFIC_PID=reloader")
    first = client.get(f"/rate/{study.slug}/quiz/").content.decode()
    assert _shown(first) == _shown(client.get(f"/rate/{study.slug}/quiz/").content.decode())
    failed = client.post(f"/rate/{study.slug}/quiz/", {}).content.decode()
    assert _shown(failed) != _shown(first)


def test_a_failed_attempt_explains_each_wrong_answer():
    study = build_study(prompts=1, require_qualification=True)
    client = Client()
    client.post(f"/rate/start/{study.slug}/?PROLIFIC_PID=learner")
    user = Rater.objects.get(external_id="learner").user
    paper = selectors.quiz_paper(rater=user.rater)
    answers = right_quiz_answers(user)
    # Two wrong: one answered wrongly, one left out
    wrong_value = next(v for v, _ in paper[0].options if v != paper[0].answer)
    answers[paper[0].key] = wrong_value
    del answers[paper[1].key]
    page = client.post(f"/rate/{study.slug}/quiz/", answers)
    assert page.status_code == 400
    text = page.content.decode()
    feedback = text[text.index('id="quiz-feedback"') : text.index("</ul>")]
    assert feedback.count("<li>") == 2
    assert f"you answered: {paper[0].label_of(wrong_value)}" in feedback
    assert "you answered: no answer" in feedback
    for question in paper[:2]:
        assert html.unescape(question.explanation) in html.unescape(feedback)


def test_the_right_answers_of_the_shown_paper_pass():
    study = build_study(prompts=1, require_qualification=True)
    client = Client()
    client.post(f"/rate/start/{study.slug}/?PROLIFIC_PID=good-student")
    user = Rater.objects.get(external_id="good-student").user
    passed = client.post(f"/rate/{study.slug}/quiz/", right_quiz_answers(user))
    assert passed.status_code == 302
    assert Rater.objects.get(user=user).is_qualified
