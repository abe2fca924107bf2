"""Prompt uploads: good files become prompt sets; bad ones say what is wrong and create nothing."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from generation import services
from generation.models import Prompt, PromptSet
from generation.prompt_files import MAX_PROMPT_CHARS, PromptFileError, parse_prompt_file


def test_txt_gives_one_prompt_per_non_blank_line():
    rows = parse_prompt_file(filename="p.txt", data=b"a cat\n\n  a dog  \r\na bird\n")
    assert [(r.external_id, r.text) for r in rows] == [
        ("1", "a cat"),
        ("2", "a dog"),
        ("3", "a bird"),
    ]


def test_csv_reads_prompt_id_and_category_in_any_column_order_with_a_bom():
    data = '\ufeffCategory,id,Prompt\nanimals,cat-1,"a cat, sleeping"\n,dog-2,a dog\n'.encode()
    rows = parse_prompt_file(filename="set.CSV", data=data)
    assert [(r.external_id, r.text, r.category) for r in rows] == [
        ("cat-1", "a cat, sleeping", "animals"),
        ("dog-2", "a dog", ""),
    ]


def test_csv_without_ids_numbers_the_rows():
    rows = parse_prompt_file(filename="p.csv", data=b"prompt\nfirst\nsecond\n")
    assert [r.external_id for r in rows] == ["1", "2"]


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("p.txt", b"", "The file is empty"),
        ("p.txt", b"  \n\n \n", "The file is empty"),
        ("p.csv", b"prompt\n", "The file is empty"),
        ("p.txt", "a caf\u00e9\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 on line 1)"),
        ("p.txt", b"ok\nok\n\xff\xfe", "on line 3"),
        ("p.csv", b"text,id\nhello,1\n", "no 'prompt' column (columns found: 'text', 'id')"),
        ("p.csv", b"prompt,id\na,1\nb,2\nc,1\n", "Duplicate id '1' on lines 2 and 4"),
        ("p.csv", b"prompt,id\na,1\n,2\n", "Line 3 has an empty prompt"),
        ("p.txt", b"ok\n" + b"x" * (MAX_PROMPT_CHARS + 1), "line 2 is 1001 characters long"),
        ("p.xlsx", b"prompt\nx\n", "Unsupported file type .xlsx"),
        ("p.csv", b"prompt,id\nok,1\nbad\x00,2\n", "NUL character on line 3"),
    ],
)
def test_bad_files_get_a_specific_error(filename, data, message):
    with pytest.raises(PromptFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_prompt_file(filename=filename, data=data)


@pytest.mark.django_db
def test_a_bad_upload_creates_nothing():
    with pytest.raises(ValidationError, match="Duplicate id"):
        services.create_prompt_set_from_file(
            name="bad", filename="p.csv", data=b"prompt,id\na,1\nb,1\n"
        )
    assert not PromptSet.objects.exists() and not Prompt.objects.exists()


@pytest.mark.django_db
def test_a_good_upload_creates_a_set_with_a_fresh_slug_each_time():
    first = services.create_prompt_set_from_file(name="Ablation", filename="a.txt", data=b"x\ny\n")
    second = services.create_prompt_set_from_file(name="Ablation", filename="a.txt", data=b"z\n")
    assert first.slug == "ablation" and second.slug == "ablation-2"
    assert first.source_file == "a.txt"
    assert list(first.prompts.values_list("text", flat=True)) == ["x", "y"]
