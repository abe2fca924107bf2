import pytest


@pytest.fixture(autouse=True)
def _empty_cache():  # type: ignore[no-untyped-def]
    # Dashboard summaries are cached by study id and judgment counts, which repeat across tests.
    from django.core.cache import cache

    cache.clear()
