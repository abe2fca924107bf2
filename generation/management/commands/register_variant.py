"""`manage.py register_variant NAME --config JSON_OR_FILE [--slug S] [--description D]`."""

import json
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from evalsite.commands import DatabaseCommand
from generation import services


class Command(DatabaseCommand):
    help = (
        "Register a model variant after checking its config as a worker would: the built-in "
        'family ({"kind": "emu", ...}) or a saved diffusers pipeline folder '
        '({"kind": "diffusers", "path": "/abs/folder", ...}).'
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Display name; its slug names the variant elsewhere.")
        parser.add_argument("--config", required=True, help="JSON text, or a .json file's path.")
        parser.add_argument("--slug", default="", help="Default: made from the name.")
        parser.add_argument("--description", default="")

    def handle(self, *args: Any, **opts: Any) -> None:
        text: str = opts["config"]
        if not text.lstrip().startswith("{"):
            path = Path(text)
            if not path.is_file():
                raise CommandError(f"--config is neither a JSON object nor a file: {text[:200]}")
            text = path.read_text(encoding="utf-8")
        try:
            config = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--config is not valid JSON: {exc}") from exc
        try:
            done = services.register_variant(
                name=opts["name"],
                config=config,
                slug=opts["slug"],
                description=opts["description"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        variant = done.variant
        verb = "Registered" if done.created else "Already registered, unchanged:"
        self.stdout.write(f"{verb} {variant.slug} v{variant.version} ({variant.name}).")
        for note in done.notes:
            self.stdout.write(f"  {note}")
