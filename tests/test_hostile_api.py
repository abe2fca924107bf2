"""schemathesis against the OpenAPI schema, as a rater and as staff: no 5xx, every 4xx readable.

Cases come from schemathesis' strategies for every operation in /api/schema/; they are sent
through Django's test client (same database transaction as the test) with the user's API token.
The number of examples is kept small so the whole file fits CI; raise SCHEMATHESIS_EXAMPLES for
a deeper run.
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote

import pytest
import schemathesis
from django.test import Client
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token

from raters import services
from tests.factories import (
    StaffFactory,
    StudyFactory,
    UserFactory,
    VariantPairFactory,
    make_comparison,
)

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "8"))


def _schema() -> dict:
    anonymous = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert anonymous.status_code in (401, 403), anonymous.status_code
    reader = Client()
    reader.force_login(UserFactory())
    response = reader.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.status_code
    if response["Content-Type"].startswith("application/json"):
        return response.json()
    import yaml

    return yaml.safe_load(response.content)


def _readable(response) -> str | None:  # type: ignore[no-untyped-def]
    """None when the 4xx body tells a person what went wrong; else what is missing."""
    body = response.content.decode("utf-8", "replace").strip()
    if not body:
        return "empty body"
    if "json" in response.get("Content-Type", ""):
        try:
            data = json.loads(body)
        except ValueError:
            return "invalid JSON"
        texts: list[str] = []

        def collect(value) -> None:  # type: ignore[no-untyped-def]
            if isinstance(value, str):
                texts.append(value)
            elif isinstance(value, dict):
                for item in value.values():
                    collect(item)
            elif isinstance(value, list):
                for item in value:
                    collect(item)

        collect(data)
        if not any(len(t.strip()) >= 3 for t in texts):
            return f"no message in {body[:200]!r}"
    elif "Traceback" in body:
        return "a stack trace"
    return None


@pytest.fixture
def users():  # type: ignore[no-untyped-def]
    study = StudyFactory(slug="hostile", min_watch_ms=0, gold_rate=0.0, mirror_rate=0.0)
    pair = VariantPairFactory(study=study)
    for _ in range(2):
        make_comparison(pair=pair)
    rater = UserFactory(username="hostile-rater")
    services.qualify_rater(user=rater)
    staff = StaffFactory(username="hostile-staff")
    return {"rater": rater, "staff": staff}


@pytest.mark.parametrize("who", ["rater", "staff"])
def test_every_api_operation_survives_generated_input(users, who):
    schema = schemathesis.openapi.from_dict(_schema())
    token = Token.objects.get_or_create(user=users[who])[0].key
    client = Client(REMOTE_ADDR=f"10.9.9.{1 if who == 'rater' else 2}")
    problems: list[str] = []
    statuses: list[int] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6, [f"{o.method} {o.path}" for o in operations]

    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case) -> None:  # type: ignore[no-untyped-def]
            path = quote(case.formatted_path, safe="/")
            kwargs = {
                "path": path,
                "data": case.query or {},
                "HTTP_AUTHORIZATION": f"Token {token}",
                "HTTP_ACCEPT": "application/json",
            }
            method = case.method.lower()
            if method in ("post", "put", "patch") and case.body is not None:
                query = "&".join(
                    f"{quote(str(k))}={quote(str(v))}" for k, v in kwargs["data"].items()
                )
                kwargs["path"] = path + (f"?{query}" if query else "")
                kwargs["data"] = json.dumps(case.body, default=str)
                kwargs["content_type"] = "application/json"
            response = getattr(client, method)(**kwargs)
            statuses.append(response.status_code)
            where = f"{who} {case.method} {path}"
            if response.status_code >= 500:
                problems.append(f"{where} -> {response.status_code}")
            elif response.status_code >= 400 and (reason := _readable(response)):
                problems.append(f"{where} -> {response.status_code}: {reason}")

        run()
    assert not problems, "\n".join(sorted(set(problems))[:20])
    # The generated cases really reached the API: some accepted, some refused.
    assert len(statuses) >= 2 * len(operations)
    assert any(200 <= s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses)
