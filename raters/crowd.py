"""Crowd workers: the start link that signs a worker id in, and what resumes it elsewhere.

A worker id is a name, not a credential: it is resumed only by the browser already signed in
as that rater, through a signed start link, or with the resume code shown at the first start.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import unicodedata
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.crypto import salted_hmac

from .models import Rater, Study
from .spreadsheets import FORMULA_STARTS


def check_external_id(*, study: Study, external_id: str) -> str:
    """The worker id of a start link, stripped; ValidationError with a message if unusable."""
    param = study.external_id_param
    external_id = external_id.strip()
    if not external_id:
        raise ValidationError({param: f"This link is missing the {param} parameter (worker id)."})
    if len(external_id) > 200:
        raise ValidationError({param: "The worker id is too long (200 characters at most)."})
    # PostgreSQL text cannot hold NUL, and no crowd platform's ids contain control characters.
    if any(unicodedata.category(char) == "Cc" for char in external_id):
        raise ValidationError({param: "The worker id contains control characters."})
    # Worker ids land in the pay and completion files, which staff open in spreadsheets: an id
    # starting like a formula would run as one there. No crowd platform's ids start so.
    if external_id.startswith(FORMULA_STARTS):
        raise ValidationError({param: "A worker id cannot start with =, +, - or @."})
    return external_id


class ResumeRefused(PermissionDenied):
    """A worker id that already has a rater is resumed only with proof (see start_crowd_session)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def start_link_signature(*, study: Study, external_id: str) -> str:
    """The `sig` of a signed start link: for platforms (or staff) that hand each worker their own
    link. It resumes that worker in that study without a resume code."""
    return salted_hmac("raters.start_link", f"{study.slug}\n{external_id}").hexdigest()[:32]


def signed_start_url(*, study: Study, external_id: str, base_url: str) -> str:
    """The full signed start link of one worker in a study."""
    from urllib.parse import urlencode, urljoin

    from django.urls import reverse

    query = urlencode(
        {
            study.external_id_param: external_id,
            "sig": start_link_signature(study=study, external_id=external_id),
        }
    )
    return urljoin(base_url, reverse("raters:start", args=[study.slug])) + "?" + query


def resume_code(*, rater: Rater) -> str:
    """The code shown to a crowd worker on their first start (and on their pages afterwards):
    what resumes their worker id from another browser. Derived from the site's secret key, so
    nothing is stored, and it changes if the key does."""
    digest = salted_hmac("raters.resume_code", f"{rater.user_id}\n{rater.external_id}").digest()
    text = base64.b32encode(digest).decode()[:10]
    return f"{text[:5]}-{text[5:]}"


def _same_code(given: str, expected: str) -> bool:
    def normal(code: str) -> str:
        # Base32 has no 0, 1 or 8: read them as the letters people mistake them for.
        code = code.upper().translate(str.maketrans("018", "OIB"))
        return re.sub(r"[^A-Z2-7]", "", code)

    return hmac.compare_digest(normal(given), normal(expected))


def start_crowd_session(
    *,
    study: Study,
    external_id: str,
    signature: str = "",
    code: str = "",
    signed_in: Any = None,
) -> Any:
    """The passwordless user behind a crowd worker id: created at the first start.

    A worker id that already has a rater is a name, not a credential (other workers, the
    platform and anyone shown a URL can know it): it is resumed only by the browser already
    signed in as that rater, through a signed start link of this study, or with the resume
    code shown at the first start. Anything else raises ResumeRefused.
    """
    external_id = check_external_id(study=study, external_id=external_id)
    profile = Rater.objects.filter(external_id=external_id).select_related("user").first()
    if profile is not None:
        signed = start_link_signature(study=study, external_id=external_id)
        if (
            (signed_in is not None and signed_in.pk == profile.user_id)
            or (signature and hmac.compare_digest(signature.encode(), signed.encode()))
            or (code and _same_code(code, resume_code(rater=profile)))
        ):
            return profile.user
        raise ResumeRefused(
            "That resume code is not right." if code else "This worker id has already started."
        )
    safe = re.sub(r"[^A-Za-z0-9_.-]", "", external_id)[:60]
    username = f"crowd-{safe}" if safe == external_id else f"crowd-{secrets.token_hex(8)}"
    users = get_user_model()
    with transaction.atomic():
        user, _ = users.objects.get_or_create(username=username)
        if user.has_usable_password():
            user.set_unusable_password()
            user.save(update_fields=["password"])
        Rater.objects.update_or_create(user=user, defaults={"external_id": external_id})
    return user
