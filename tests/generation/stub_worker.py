"""`python -m tests.generation.stub_worker worker …`: a real Celery worker with a stub model.

Everything but the model is real (broker, database, storage, MP4 export); the model is
`FakeGenerator`, patched in before the pool forks, so orchestration tests and the scheduling
benchmark do not depend on trained checkpoints. JUICE_STUB_MODEL_SECONDS sets its model time.
"""

from __future__ import annotations

import os
import sys

from generation.video import pipeline
from tests.generation.fakes import FakeGenerator


def main() -> None:
    generator = FakeGenerator(
        seconds_per_video=float(os.environ.get("JUICE_STUB_MODEL_SECONDS", "0")),
        frames=int(os.environ.get("JUICE_STUB_FRAMES", "4")),
    )
    pipeline.load_generator = lambda config, device="cpu", precision="float32": generator  # type: ignore[assignment]
    from celery.__main__ import main as celery_main

    sys.argv = ["celery", "-A", "evalsite", *sys.argv[1:]]
    celery_main()


if __name__ == "__main__":
    main()
