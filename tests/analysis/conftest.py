import pytest


@pytest.fixture(autouse=True)
def _fast_passwords(settings):  # type: ignore[no-untyped-def]
    # Factories set passwords for every user; PBKDF2 would dominate these tests' time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache():  # type: ignore[no-untyped-def]
    # Dashboard summaries are cached by study id and judgment counts, which repeat across tests.
    from django.core.cache import cache

    cache.clear()
