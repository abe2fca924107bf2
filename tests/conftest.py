"""Shared fixtures. Tests marked `services` need the real PostgreSQL and Redis servers.

`make test` runs those in a second pytest pass with DATABASE_URL and CELERY_BROKER_URL pointing
at the servers. Where a server is missing they are skipped with a message saying how to enable
them, except under REQUIRE_SERVICES=1 (CI), where a missing server fails the run.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
ENABLE_HINT = (
    "start PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) and run `make test`, which "
    "sets DATABASE_URL=postgres://… and CELERY_BROKER_URL=redis://… for the `services` pass"
)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _services_problem() -> str | None:
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return "DATABASE_URL does not point at PostgreSQL"
    if not os.environ.get("CELERY_BROKER_URL", "").startswith("redis"):
        return "CELERY_BROKER_URL does not point at Redis"
    if not _reachable("127.0.0.1", 5432):
        return "PostgreSQL is not reachable on 127.0.0.1:5432"
    if not _reachable("127.0.0.1", 6379):
        return "Redis is not reachable on 127.0.0.1:6379"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problem = _services_problem()
    chromium = Path("/usr/bin/chromium").exists()
    for item in items:
        if "services" in item.keywords and problem:
            if REQUIRE_SERVICES:
                item.user_properties.append(("services_problem", problem))
            else:
                item.add_marker(pytest.mark.skip(reason=f"{problem}: {ENABLE_HINT}"))
        if "browser" in item.keywords and not chromium:
            if REQUIRE_SERVICES:
                item.user_properties.append(("browser_problem", "no /usr/bin/chromium"))
            else:
                item.add_marker(
                    pytest.mark.skip(
                        reason="Debian's chromium is not installed (apt install chromium)"
                    )
                )


@pytest.fixture(autouse=True)
def _fail_when_required_service_missing(request: pytest.FixtureRequest) -> None:
    for key, value in request.node.user_properties:
        if key in ("services_problem", "browser_problem"):
            pytest.fail(f"REQUIRE_SERVICES=1 but {value}")


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    """Each test writes videos into its own folder."""
    root = tmp_path_factory.mktemp("media")
    settings.MEDIA_ROOT = root
    yield root


@pytest.fixture(autouse=True)
def _sweep_every_request(settings) -> None:  # type: ignore[no-untyped-def]
    """Tests expire assignments, edit studies and ask again at once: sweep and read afresh
    on every request (the throttles themselves are tested in tests/raters)."""
    settings.JUICE_EXPIRY_SWEEP_SECONDS = 0
    settings.JUICE_PROGRESS_CACHE_SECONDS = 0
    settings.JUICE_STUDY_CACHE_SECONDS = 0


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:  # type: ignore[no-untyped-def]
    """PBKDF2 is deliberately slow; tests log in often and only need a working hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def tiny_pipelines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random-weight CogVideoX, LTX and Wan pipelines saved to a temporary folder."""
    from tests.generation.tiny_pipelines import BUILDERS, save

    root = tmp_path_factory.mktemp("tiny-pipelines")
    return {family: save(family, root) for family in BUILDERS}
