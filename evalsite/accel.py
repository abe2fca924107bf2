"""Hand a stored file to nginx with X-Accel-Redirect instead of streaming it through Python.

The view still decides who may see which file (the rater's own assignment, by side); nginx then
serves the bytes from an `internal` location with sendfile and its own range handling, and drops
the X-Accel-Redirect header, so the storage name never reaches the rater. Enabled by setting
JUICE_MEDIA_ACCEL_PREFIX (for example "/_protected_media/"), matching docs/production.md.
"""

from __future__ import annotations

from urllib.parse import quote

from django.conf import settings
from django.db.models.fields.files import FieldFile
from django.http import HttpResponse


def accel_prefix() -> str:
    return str(getattr(settings, "JUICE_MEDIA_ACCEL_PREFIX", "") or "")


def accel_response(field: FieldFile, content_type: str) -> HttpResponse:
    """An empty response that tells nginx which stored file to send in its place."""
    prefix = accel_prefix()
    if not prefix:
        raise ValueError("JUICE_MEDIA_ACCEL_PREFIX is not set: nginx is not configured for it.")
    response = HttpResponse(content_type=content_type)
    response["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + quote(field.name or "")
    response["Cache-Control"] = "private, max-age=3600"
    return response
