"""Hostile prompt uploads: arbitrary bytes, Unicode, huge files and odd names.

Whatever an admin uploads, parsing answers PromptFileError or clean rows, and the upload service
answers ValidationError or a prompt set holding exactly those rows, on SQLite and on PostgreSQL
(the `services` pass), never a database error.
"""

from __future__ import annotations

import itertools
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generation import services
from generation.prompt_files import (
    MAX_ID_CHARS,
    MAX_PROMPT_CHARS,
    MAX_PROMPTS,
    PromptFileError,
    PromptRow,
    parse_prompt_file,
)

FILENAMES = st.sampled_from(["p.txt", "p.csv", "P.TXT", "prompts.CsV", "p", "p.json", ".txt"])
LINES = st.lists(st.text(max_size=60), max_size=12)


def _csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


@st.composite
def uploads(draw) -> tuple[str, bytes]:  # type: ignore[no-untyped-def]
    kind = draw(st.sampled_from(["bytes", "txt", "csv"]))
    if kind == "bytes":
        return draw(FILENAMES), draw(st.binary(max_size=400))
    if kind == "txt":
        newline = draw(st.sampled_from(["\n", "\r\n", "\r", "\u2028"]))
        return "p.txt", newline.join(draw(LINES)).encode("utf-8")
    header = draw(
        st.lists(st.sampled_from(["prompt", "id", "category", "Prompt ", "", "x"]), max_size=4)
    )
    width = max(1, len(header))
    rows = draw(st.lists(st.lists(st.text(max_size=30), min_size=0, max_size=width), max_size=8))
    return "p.csv", _csv_bytes(header, rows)


def _check_rows(rows: list[PromptRow]) -> None:
    assert 1 <= len(rows) <= MAX_PROMPTS
    ids = [row.external_id for row in rows]
    assert len(set(ids)) == len(ids), "duplicate ids"
    for row in rows:
        assert row.text and row.text == row.text.strip()
        assert len(row.text) <= MAX_PROMPT_CHARS
        assert row.external_id and len(row.external_id) <= MAX_ID_CHARS
        # PostgreSQL text cannot hold NUL: the parser must refuse it, not the database.
        assert "\x00" not in row.text + row.external_id + row.category


def _parse(filename: str, data: bytes) -> list[PromptRow] | None:
    try:
        return parse_prompt_file(filename=filename, data=data)
    except PromptFileError as exc:
        assert str(exc), "a PromptFileError must say what is wrong"
        return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(uploads())
def test_any_upload_parses_to_clean_rows_or_a_prompt_file_error(upload):
    filename, data = upload
    rows = _parse(filename, data)
    if rows is not None:
        _check_rows(rows)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=80).filter(lambda s: s.strip()), min_size=1))
def test_a_text_file_keeps_every_non_blank_line_in_order(lines):
    lines = [" ".join(line.split()) for line in lines]
    lines = [line for line in lines if line]
    data = "\n".join(lines).encode("utf-8")
    rows = _parse("p.txt", data)
    expected = [p for line in data.decode("utf-8").splitlines() if (p := line.strip())]
    if rows is None:
        # Refused only for a reason: nothing left, a prompt too long, or a NUL character.
        assert not expected or any(len(p) > MAX_PROMPT_CHARS or "\x00" in p for p in expected)
    else:
        assert [r.text for r in rows] == expected


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("p.txt", b"\xff\xfe\x00bad", "UTF-8"),
        ("p.txt", b"", "empty"),
        ("p.txt", b"\n\n   \n", "empty"),
        ("p.csv", b"text,id\nhello,1\n", "prompt"),
        ("p.csv", b"prompt,id\nhello,1\nagain,1\n", "Duplicate"),
        ("p.exe", b"hello", "Unsupported"),
        ("p.txt", ("x" * (MAX_PROMPT_CHARS + 1)).encode(), "limit"),
    ],
)
def test_bad_files_say_what_is_wrong(filename, data, message):
    with pytest.raises(PromptFileError, match=message):
        parse_prompt_file(filename=filename, data=data)


def test_huge_files_are_refused_quickly():
    # More prompts than the limit, and one 20 MB line: both refused in well under a second each.
    many = "\n".join(f"prompt {i}" for i in range(MAX_PROMPTS + 1)).encode()
    one_line = b"y" * (20 * 1024 * 1024)
    for data in (many, one_line):
        started = time.perf_counter()
        with pytest.raises(PromptFileError):
            parse_prompt_file(filename="p.txt", data=data)
        assert time.perf_counter() - started < 5


_names = itertools.count()


def _upload_via_service(filename: str, data: bytes) -> None:
    name = f"hostile {next(_names)}"
    try:
        with transaction.atomic():
            prompt_set = services.create_prompt_set_from_file(
                name=name, filename=filename, data=data
            )
    except ValidationError as exc:
        assert exc.messages and all(exc.messages)
        return
    rows = parse_prompt_file(filename=filename, data=data)
    stored = list(prompt_set.prompts.order_by("id").values_list("external_id", "text"))
    assert stored == [(r.external_id, r.text) for r in rows]


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(uploads())
def test_upload_service_answers_validation_error_or_stores_exact_rows(upload):
    _upload_via_service(*upload)


@pytest.mark.services
@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(uploads())
def test_upload_service_on_postgresql_answers_validation_error_or_stores_exact_rows(upload):
    _upload_via_service(*upload)


@pytest.mark.services
@pytest.mark.django_db
@pytest.mark.parametrize(
    "data",
    [
        b"a prompt with a NUL \x00 byte\n",
        b"prompt,id,category\nfine,1,odd\x00category\n",
        "emoji \U0001f3ac and rtl \u202e text\n".encode(),
    ],
)
def test_upload_service_on_postgresql_never_raises_a_database_error(data):
    # PostgreSQL text cannot hold NUL bytes: such a file must be refused with a message.
    filename = "p.csv" if data.startswith(b"prompt,") else "p.txt"
    _upload_via_service(filename, data)


@st.composite
def launch_forms(draw) -> dict:  # type: ignore[no-untyped-def]
    from django.core.files.uploadedfile import SimpleUploadedFile

    junk = st.text(max_size=30) | st.sampled_from(["1", "-1", "0", "9" * 30, "1e3", "\x00"])
    data = {
        "name": draw(st.text(max_size=250)),
        "variants": draw(st.lists(junk, max_size=3)),
        "seeds": draw(junk),
        "chunk_size": draw(junk),
        "sample_batch": draw(junk),
    }
    if draw(st.booleans()):
        filename, content = draw(uploads())
        data["prompt_file"] = SimpleUploadedFile(filename, content, content_type="text/plain")
    if draw(st.booleans()):
        data["prompt_set"] = draw(junk)
    return data


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(form=launch_forms())
def test_staff_launch_page_answers_hostile_forms_without_a_server_error(form):
    from django.test import Client

    from generation.models import GenerationBatch, ModelVariant
    from tests.factories import ModelVariantFactory, StaffFactory

    staff = StaffFactory(username="hostile-launcher")
    # Examples share one transaction: make the variant once.
    variant = ModelVariant.objects.filter(slug="hostile-variant").first() or ModelVariantFactory(
        slug="hostile-variant"
    )
    if form["variants"]:
        form["variants"][0] = str(variant.pk)
    client = Client()
    client.force_login(staff)
    before = GenerationBatch.objects.count()
    response = client.post("/staff/generation/", form)
    # Then: a page with the form's errors, or a redirect to a batch that was really created
    assert response.status_code in (200, 302), response.status_code
    if response.status_code == 302:
        assert GenerationBatch.objects.count() == before + 1
        assert "\x00" not in GenerationBatch.objects.latest("id").name
    else:
        assert GenerationBatch.objects.count() == before


def test_an_upload_over_the_size_limit_is_refused_before_parsing(client, django_user_model):
    from django.core.files.uploadedfile import SimpleUploadedFile

    staff = django_user_model.objects.create_user("big-uploader", is_staff=True, password="x" * 12)
    client.force_login(staff)
    big = SimpleUploadedFile("p.txt", b"a prompt\n" * (700 * 1024), content_type="text/plain")
    response = client.post("/staff/generation/", {"name": "big", "seeds": "1", "prompt_file": big})
    assert response.status_code == 200
    assert "over 5 MB" in response.content.decode()
