"""The rating writes that views, the API, commands and tasks call, gathered in one import.

Each lives in the module of its concept; this one only names them, so that a caller needs
one import and the concepts can move without every caller following:

- raters.profiles: rater profiles, the quiz, quality-control stops, a study's cut-off
- raters.crowd: crowd workers' start links and resume codes
- raters.assignments: handing out tasks (real, gold, mirrored)
- raters.expiry: abandoned tasks going back to the pool
- raters.judgments: recording a judgment and scoring the checks in it
- raters.gold_checks: building a study's gold comparisons (video files)

The hand-written SQL of the rating path is in raters.hot_path; reads are in raters.selectors.
"""

from __future__ import annotations

from .assignments import next_assignment, next_task
from .crowd import (
    ResumeRefused,
    check_external_id,
    resume_code,
    signed_start_url,
    start_crowd_session,
    start_link_signature,
)
from .expiry import expire_stale_assignments
from .gold_checks import build_gold_comparisons
from .judgments import Answer, WatchReport, record_judgment, submit_judgment
from .profiles import (
    RatingRefused,
    check_may_rate,
    qualify_rater,
    rater_profile,
    recount_assignments,
    reinstate_rater,
    stop_rater,
    take_quiz,
)

__all__ = [
    "Answer",
    "RatingRefused",
    "ResumeRefused",
    "WatchReport",
    "build_gold_comparisons",
    "check_external_id",
    "check_may_rate",
    "expire_stale_assignments",
    "next_assignment",
    "next_task",
    "qualify_rater",
    "rater_profile",
    "record_judgment",
    "recount_assignments",
    "reinstate_rater",
    "resume_code",
    "signed_start_url",
    "start_crowd_session",
    "start_link_signature",
    "stop_rater",
    "submit_judgment",
    "take_quiz",
]
