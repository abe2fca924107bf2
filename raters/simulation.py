"""Simulated raters: HTTP clients that rate a running site the way browsers do.

An admin dry-runs a study with them before paying anyone: they arrive through the study's start
link (session cookie + CSRF, like the rating page), ask for the next comparison, fetch both clips
with range requests, wait a realistic time, and submit justified JUICE judgments. They judge by
the videos' automatic scores when an oracle gives them (plus noise and a pull towards the left
side), and a share of them are careless (always left, one reason) so gold checks catch them.
A dropped connection or a 502/503/504 is retried with the same request, and a lost session is
renewed through the start link (which resumes the same rater); submits carry the assignment
token, so a retried submit can never count twice.

Account creation and the score oracle read and write the database; everything else is plain
HTTP, so `run_simulation` also works against a remote site.
"""

from __future__ import annotations

import math
import random
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import requests

from . import juice

RETRY_STATUSES = frozenset({502, 503, 504})
SIMULATED_PREFIX = "sim"


@dataclass(frozen=True)
class Behaviour:
    """How simulated raters judge and how long they take.

    `noise` is the standard deviation added to the score difference (in score units);
    `position_bias` is added to the left side's score, so 0.1 means a small pull to the left;
    `wait_scale` multiplies the realistic times (0 = no waiting, for tests and saturation runs);
    `fetch_media` off skips the clips (a saturation run measuring next + submit only).
    """

    noise: float = 0.15
    position_bias: float = 0.05
    tie_margin: float = 0.02
    watch_s: float = 4.0
    decide_s: float = 6.0
    wait_scale: float = 1.0
    fetch_media: bool = True
    retry_for_s: float = 60.0
    timeout_s: float = 30.0


@dataclass(frozen=True)
class SimulatedAccount:
    """A simulated rater's identity: the start-link id it arrives with, and the signature of
    its signed start link (a worker id that already has a rater needs one to resume)."""

    external_id: str
    careless: bool
    signature: str = ""

    def start_params(self, id_param: str = "PROLIFIC_PID") -> dict[str, str]:
        params = {id_param: self.external_id}
        if self.signature:
            params["sig"] = self.signature
        return params


@dataclass(frozen=True)
class Expectation:
    """What an attentive rater would see in a comparison: > 0 favours the left clip."""

    quality: float
    faithfulness: float


Oracle = Callable[[str], Expectation | None]


@dataclass
class RaterResult:
    external_id: str
    careless: bool
    accepted: list[str] = field(default_factory=list)
    duplicates: int = 0
    retries: int = 0
    errors: list[str] = field(default_factory=list)
    outcome: str = "running"
    latencies: dict[str, list[float]] = field(default_factory=dict)

    def timed(self, name: str, seconds: float) -> None:
        self.latencies.setdefault(name, []).append(seconds)


@dataclass
class SimulationReport:
    results: list[RaterResult]
    seconds: float

    @property
    def accepted(self) -> list[str]:
        return [token for r in self.results for token in r.accepted]

    @property
    def requests(self) -> int:
        return sum(len(v) for r in self.results for v in r.latencies.values())

    def latencies(self, name: str) -> list[float]:
        return sorted(x for r in self.results for x in r.latencies.get(name, []))

    def outcomes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.outcome] = counts.get(r.outcome, 0) + 1
        return counts

    def summary(self) -> str:
        lines = [
            f"{len(self.results)} simulated raters, {self.seconds:.1f} s, "
            f"{len(self.accepted)} judgments accepted, {self.requests} requests "
            f"({self.requests / max(self.seconds, 1e-9):.1f}/s), "
            f"{sum(r.retries for r in self.results)} retries",
            f"outcomes: {self.outcomes()}",
        ]
        for name in ("next", "submit", "video", "poster"):
            values = self.latencies(name)
            if values:
                lines.append(
                    f"{name:>7}: n={len(values)} p50={percentile(values, 50) * 1000:.1f} ms "
                    f"p95={percentile(values, 95) * 1000:.1f} ms "
                    f"p99={percentile(values, 99) * 1000:.1f} ms"
                )
        errors = [e for r in self.results for e in r.errors]
        if errors:
            lines.append(f"errors ({len(errors)}): {errors[:5]}")
        return "\n".join(lines)


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


# --- Database side: accounts and the score oracle ------------------------------------------


def create_simulated_raters(
    *, study: Any, count: int, careless_share: float = 0.1, seed: int = 0
) -> list[SimulatedAccount]:
    """Create `count` simulated rater profiles that the study's start link will resume.

    Each is a passwordless user with a `Rater` marked `is_simulated`, so the server marks their
    judgments simulated and analysis leaves them out unless asked.
    """
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from .models import Rater

    user_model = get_user_model()
    rng = random.Random(seed)
    run = secrets.token_hex(3)
    accounts: list[SimulatedAccount] = []
    with transaction.atomic():
        for i in range(count):
            external_id = f"{SIMULATED_PREFIX}-{study.slug}-{run}-{i:04d}"[:200]
            user = user_model(username=external_id[:150])
            user.set_unusable_password()
            user.save()
            Rater.objects.create(user=user, external_id=external_id, is_simulated=True)
            _qualify(user)
            accounts.append(
                SimulatedAccount(
                    external_id=external_id,
                    careless=rng.random() < careless_share,
                    signature=_signature(study, external_id),
                )
            )
    return accounts


def _signature(study: Any, external_id: str) -> str:
    from . import services

    return services.start_link_signature(study=study, external_id=external_id)


def _qualify(user: Any) -> None:
    """Let the simulated rater skip the qualification quiz (it tests people, not scripts)."""
    from . import services

    services.qualify_rater(user=user)


def score_oracle(token: str) -> Expectation | None:
    """What an attentive rater would prefer for one assignment, from the videos' scores.

    Gold comparisons have a degraded side B (quality control), so the oracle prefers A
    there even without scores. Real comparisons without scores give None (a coin flip).
    """
    from .models import Assignment, Comparison

    try:
        assignment = Assignment.objects.select_related(
            "comparison__video_a", "comparison__video_b"
        ).get(token=token)
    except (Assignment.DoesNotExist, ValueError):
        return None
    comparison = assignment.comparison
    sign = 1.0 if assignment.left_is_a else -1.0
    if comparison.kind == Comparison.Kind.GOLD:
        return Expectation(quality=sign, faithfulness=sign)
    quality = _score_gap(comparison.video_a.scores, comparison.video_b.scores, QUALITY_KEYS)
    faithful = _score_gap(comparison.video_a.scores, comparison.video_b.scores, FAITHFUL_KEYS)
    if quality is None and faithful is None:
        return None
    quality = quality if quality is not None else faithful
    faithful = faithful if faithful is not None else quality
    assert quality is not None and faithful is not None
    return Expectation(quality=sign * quality, faithfulness=sign * faithful)


# Score keys the ML metrics may write; higher is better for all of them.
QUALITY_KEYS = ("quality", "sharpness", "smoothness", "consistency", "aesthetic")
FAITHFUL_KEYS = ("faithfulness", "clip_score", "text_alignment")


def _score_gap(a: dict[str, Any], b: dict[str, Any], keys: Sequence[str]) -> float | None:
    gaps = [
        float(a[k]) - float(b[k])
        for k in keys
        if isinstance(a.get(k), int | float) and isinstance(b.get(k), int | float)
    ]
    return sum(gaps) / len(gaps) if gaps else None


# --- HTTP side: one simulated rater -----------------------------------------------------------


class RaterGone(Exception):
    """The site will not serve this rater any more (QC stop, not qualified, study closed)."""


class SimulatedRater:
    """One rater's browser: a cookie session that rates until the study has nothing left."""

    def __init__(
        self,
        *,
        base_url: str,
        study_slug: str,
        account: SimulatedAccount,
        behaviour: Behaviour,
        oracle: Oracle | None = None,
        seed: int = 0,
        id_param: str = "PROLIFIC_PID",
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.id_param = id_param
        self.study_slug = study_slug
        self.account = account
        self.behaviour = behaviour
        self.oracle = oracle
        self.rng = random.Random(f"{seed}-{account.external_id}")
        self.http = requests.Session()
        self.result = RaterResult(external_id=account.external_id, careless=account.careless)

    def run(
        self, *, deadline: float | None = None, max_judgments: int | None = None
    ) -> RaterResult:
        try:
            self.arrive()
            while deadline is None or time.monotonic() < deadline:
                if max_judgments is not None and len(self.result.accepted) >= max_judgments:
                    self.result.outcome = "limit"
                    break
                task = self.next_task()
                if task is None:
                    self.result.outcome = "done"
                    break
                self.watch(task)
                self.submit(task)
            else:
                self.result.outcome = "time"
        except RaterGone as exc:
            self.result.outcome = f"stopped: {exc}"
        except Exception as exc:  # noqa: BLE001 - one rater's failure is reported, not fatal
            self.result.outcome = "error"
            self.result.errors.append(f"{type(exc).__name__}: {exc}"[:300])
        finally:
            self.http.close()
        return self.result

    # Each step below is what the rating page's JavaScript does.

    def arrive(self) -> None:
        """The start link's page (it sets the CSRF cookie), then its Start button (a POST)."""
        url = self._url(f"rate/start/{self.study_slug}/")
        params = self.account.start_params(self.id_param)
        response = self._request("start", "GET", url, params=params)
        if response.status_code < 400 and not response.history:  # not signed in as it yet
            response = self._request(
                "start", "POST", url, params=params, **start_button(self.http, response.url)
            )
        if response.status_code >= 400:
            raise RaterGone(f"start link answered {response.status_code}")

    def next_task(self) -> dict[str, Any] | None:
        response = self._api("next", "POST", f"api/studies/{self.study_slug}/next/", json={})
        if response.status_code == 204:
            return None
        if response.status_code in (401, 403):
            raise RaterGone(_detail(response))
        _expect(response, 200)
        task: dict[str, Any] = response.json()
        return task

    def watch(self, task: dict[str, Any]) -> None:
        for side in ("left", "right") if self.behaviour.fetch_media else ():
            media = task[side]
            if media.get("poster"):
                self._fetch("poster", media["poster"], headers={})
            # The <video> element asks for a byte range first, then streams the rest.
            self._fetch("video", media["video"], headers={"Range": "bytes=0-"})
        b = self.behaviour
        # Careless raters let the clips play (the server checks watch time) but barely decide.
        watch = b.watch_s * (1.0 if self.account.careless else self.rng.uniform(1.0, 1.6))
        decide = b.decide_s * (0.3 if self.account.careless else self.rng.lognormvariate(0, 0.4))
        task["_watch_ms"] = int(watch * 1000)
        task["_time_ms"] = int((watch + decide) * 1000)
        time.sleep((watch + decide) * b.wait_scale)

    def submit(self, task: dict[str, Any]) -> None:
        body = self.judge(task)
        response = self._api("submit", "POST", "api/judgments/", json=body)
        if response.status_code in (401, 403):
            raise RaterGone(_detail(response))
        _expect(response, 200, 201)
        if response.status_code == 200:
            self.result.duplicates += 1
        if task["token"] not in self.result.accepted:
            self.result.accepted.append(task["token"])

    def judge(self, task: dict[str, Any]) -> dict[str, Any]:
        """The JUICE answers for one task, as the rating page would send them."""
        allow_ties = bool(task.get("allow_ties", True))
        if self.account.careless:
            quality, faithfulness = 1.0, 1.0
        else:
            expected = self.oracle(task["token"]) if self.oracle else None
            quality = expected.quality if expected else 0.0
            faithfulness = expected.faithfulness if expected else 0.0
            b = self.behaviour
            quality += b.position_bias + self.rng.gauss(0, max(b.noise, 1e-6))
            faithfulness += b.position_bias + self.rng.gauss(0, max(b.noise, 1e-6))
        q_side, q_reasons = self._answer("quality", quality, allow_ties)
        f_side, f_reasons = self._answer("faithfulness", faithfulness, allow_ties)
        return {
            "token": task["token"],
            "quality": q_side,
            "quality_reasons": q_reasons,
            "faithfulness": f_side,
            "faithfulness_reasons": f_reasons,
            "time_spent_ms": task.get("_time_ms", 0),
            "watch_ms": task.get("_watch_ms", 0),
            "replays": 0 if self.account.careless else self.rng.choice((0, 0, 1, 2)),
            "seeks": 0 if self.account.careless else self.rng.choice((0, 0, 0, 1)),
            "played_through": True,
        }

    def _answer(self, question: str, margin: float, allow_ties: bool) -> tuple[str, list[str]]:
        if allow_ties and abs(margin) < self.behaviour.tie_margin and not self.account.careless:
            return "tie", [self.rng.choice(sorted(juice.TIE_REASONS))]
        side = "left" if margin >= 0 else "right"
        codes = sorted(juice.allowed_reasons(question, "a"))
        if self.account.careless:
            return side, codes[:1]
        return side, self.rng.sample(codes, self.rng.randint(1, min(2, len(codes))))

    # --- transport -----------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return urljoin(self.base_url, path)

    def _api(self, name: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = self._request(name, method, self._url(path), headers=self._headers(), **kwargs)
        if _lost_login(response):
            # A new login rotates the CSRF token: build the headers again.
            self.arrive()
            response = self._request(
                name, method, self._url(path), headers=self._headers(), **kwargs
            )
        return response

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "Referer": self.base_url}
        csrf = self.http.cookies.get("csrftoken")
        if csrf:
            headers["X-CSRFToken"] = csrf
        return headers

    def _fetch(self, name: str, url: str, *, headers: dict[str, str]) -> None:
        response = self._request(name, "GET", self._url(url), headers=headers, stream=True)
        if _lost_login(response):
            response.close()
            self.arrive()
            response = self._request(name, "GET", self._url(url), headers=headers, stream=True)
        try:
            if name == "video" and response.status_code != 206:
                raise AssertionError(f"video answered {response.status_code}, not 206")
            _expect(response, 200, 206)
            for _chunk in response.iter_content(64 * 1024):
                pass
        finally:
            response.close()

    def _request(self, name: str, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send, retrying dropped connections and 502/503/504 until `retry_for_s` runs out."""
        give_up = time.monotonic() + self.behaviour.retry_for_s
        pause = 0.1
        while True:
            started = time.perf_counter()
            try:
                response = self.http.request(
                    method, url, timeout=self.behaviour.timeout_s, **kwargs
                )
            except requests.ConnectionError as exc:
                failure: str = f"connection: {type(exc).__name__}"
            except requests.Timeout:
                failure = "timeout"
            else:
                if response.status_code not in RETRY_STATUSES:
                    self.result.timed(name, time.perf_counter() - started)
                    return response
                failure = f"{response.status_code}"
                response.close()
            if time.monotonic() + pause > give_up:
                raise ConnectionError(f"{name}: gave up after retries ({failure})")
            self.result.retries += 1
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def start_button(http: requests.Session, page_url: str) -> dict[str, Any]:
    """What pressing the start page's Start button sends besides the link's parameters: the
    CSRF token the page set, and the page as Referer (Django checks it over HTTPS)."""
    token = http.cookies.get("csrftoken") or ""
    return {"data": {"csrfmiddlewaretoken": token}, "headers": {"Referer": page_url}}


def _expect(response: requests.Response, *codes: int) -> None:
    if response.status_code not in codes:
        raise AssertionError(
            f"{response.request.method} {response.url} answered {response.status_code}: "
            f"{response.text[:200]!r}"
        )


def _lost_login(response: requests.Response) -> bool:
    """401/403 because the session is gone (server restarted with new sessions, cookie expired),
    as opposed to a QC stop or a missing qualification, which carry a `code`."""
    if response.status_code not in (401, 403):
        return False
    try:
        body = response.json()
    except ValueError:
        return True
    return not (isinstance(body, dict) and body.get("code") in ("stopped", "not_qualified"))


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return f"HTTP {response.status_code}"


# --- Many raters -----------------------------------------------------------------------------


def run_simulation(
    *,
    base_url: str,
    study_slug: str,
    accounts: Sequence[SimulatedAccount],
    behaviour: Behaviour = Behaviour(),
    concurrency: int = 20,
    duration_s: float | None = None,
    max_judgments: int | None = None,
    oracle: Oracle | None = None,
    seed: int = 0,
    id_param: str = "PROLIFIC_PID",
    on_progress: Callable[[RaterResult], None] | None = None,
    arrival_spread_s: float = 0.0,
) -> SimulationReport:
    """Run every account, `concurrency` at a time, until the study is done or time is up.

    With `arrival_spread_s` the raters arrive evenly over that many seconds, as a crowd does,
    instead of all in the same instant.
    """
    started = time.monotonic()
    deadline = started + duration_s if duration_s is not None else None
    lock = threading.Lock()

    def one(numbered: tuple[int, SimulatedAccount]) -> RaterResult:
        index, account = numbered
        if arrival_spread_s > 0:
            arrival = started + arrival_spread_s * index / len(accounts)
            time.sleep(max(0.0, arrival - time.monotonic()))
        rater = SimulatedRater(
            base_url=base_url,
            study_slug=study_slug,
            account=account,
            behaviour=behaviour,
            oracle=oracle,
            seed=seed,
            id_param=id_param,
        )
        try:
            result = rater.run(deadline=deadline, max_judgments=max_judgments)
        finally:
            if oracle is not None:
                # The oracle reads the database from this thread: give its connection back.
                from django.db import connections

                connections.close_all()
        if on_progress is not None:
            with lock:
                on_progress(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        results = list(pool.map(one, enumerate(accounts)))
    return SimulationReport(results=results, seconds=time.monotonic() - started)


def dry_run(
    *,
    study_slug: str,
    raters: int,
    base_url: str,
    concurrency: int = 20,
    minutes: float | None = None,
    careless_share: float = 0.1,
    behaviour: Behaviour = Behaviour(),
    seed: int = 0,
) -> SimulationReport:
    """Create simulated raters for the study and run them against the site at `base_url`."""
    from django.core.exceptions import ObjectDoesNotExist

    from .models import Study

    try:
        study = Study.objects.get(slug=study_slug)
    except ObjectDoesNotExist as exc:
        raise LookupError(f"No study with slug {study_slug!r}.") from exc
    accounts = create_simulated_raters(
        study=study, count=raters, careless_share=careless_share, seed=seed
    )
    return run_simulation(
        base_url=base_url,
        study_slug=study.slug,
        accounts=accounts,
        behaviour=behaviour,
        concurrency=concurrency,
        duration_s=minutes * 60 if minutes else None,
        oracle=score_oracle,
        seed=seed,
        id_param=study.external_id_param,
    )
