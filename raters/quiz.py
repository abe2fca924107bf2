"""The qualification quiz: a rater shows they understand JUICE before the first real task."""

from __future__ import annotations

from dataclasses import dataclass

MAX_ATTEMPTS = 3
PASS_MARK = 4


@dataclass(frozen=True)
class QuizQuestion:
    key: str
    text: str
    options: tuple[tuple[str, str], ...]
    answer: str
    explanation: str


QUESTIONS: tuple[QuizQuestion, ...] = (
    QuizQuestion(
        key="sharp",
        text=(
            "Both clips move the same way, but the right one is smeared and soft while the left "
            "one is crisp. You prefer the left one for quality. Which reason fits best?"
        ),
        options=(
            ("pixel_sharpness", "Pixel sharpness"),
            ("amount_of_motion", "Amount of motion"),
            ("temporal_alignment", "Temporal text alignment"),
        ),
        answer="pixel_sharpness",
        explanation="Crisp versus soft is about pixel sharpness.",
    ),
    QuizQuestion(
        key="direction",
        text=(
            "Prompt: “a dog runs to the left”. In the left clip the dog runs right; in the right "
            "clip it runs left. What do you answer for faithfulness?"
        ),
        options=(
            ("right_temporal", "Right, because of temporal text alignment"),
            ("left_spatial", "Left, because of spatial text alignment"),
            ("right_sharpness", "Right, because of pixel sharpness"),
        ),
        answer="right_temporal",
        explanation="The prompt describes a motion over time: temporal text alignment.",
    ),
    QuizQuestion(
        key="consistency",
        text=(
            "In the right clip a cup changes shape and colour from frame to frame; in the left "
            "clip it stays the same cup. Which quality reason fits a choice for the left clip?"
        ),
        options=(
            ("frame_consistency", "Object/scene consistency"),
            ("spatial_alignment", "Spatial text alignment"),
            ("amount_of_motion", "Amount of motion"),
        ),
        answer="frame_consistency",
        explanation="Objects that keep their identity across frames are consistent.",
    ),
    QuizQuestion(
        key="tie",
        text=(
            "Both clips are equally off-prompt and you cannot tell them apart. The study allows "
            "ties. What do you answer for faithfulness?"
        ),
        options=(
            ("tie_bad", "Tie, equally bad"),
            ("left_any", "Left, with any reason"),
            ("skip", "Submit without an answer"),
        ),
        answer="tie_bad",
        explanation="A tie needs its own reason: equally good or equally bad.",
    ),
    QuizQuestion(
        key="reasons",
        text="Can you submit a choice without selecting a reason?",
        options=(
            ("no", "No: every choice needs at least one reason"),
            ("yes", "Yes, reasons are optional"),
            ("tie_only", "Only for ties"),
        ),
        answer="no",
        explanation="JUICE: raters justify every choice with at least one reason.",
    ),
)
