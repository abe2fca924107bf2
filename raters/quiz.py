"""The qualification quiz: a rater shows they understand JUICE before the first real task.

Each question has several variants. A rater's paper (one per attempt) draws one variant of
each question, shuffles its options and spreads the right answers over the positions, so that
always answering the same position (the first option, say) scores at most 2 of 5. Option values
on the page are opaque per paper: a script cannot key on them either.

Pure Python: the caller supplies the paper's seed (raters.selectors.quiz_paper derives it from
the site's secret, the rater and the attempt).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

MAX_ATTEMPTS = 3
PASS_MARK = 4


@dataclass(frozen=True)
class QuizVariant:
    text: str
    options: tuple[tuple[str, str], ...]  # (key, label); every variant has three
    answer: str
    explanation: str


@dataclass(frozen=True)
class QuizQuestion:
    key: str
    variants: tuple[QuizVariant, ...]


@dataclass(frozen=True)
class PaperQuestion:
    """One question as a rater sees it: options in their order, values opaque."""

    key: str
    text: str
    options: tuple[tuple[str, str], ...]  # (value, label) in the order shown
    answer: str  # the value of the right option
    explanation: str

    def label_of(self, value: str) -> str:
        return next((label for v, label in self.options if v == value), "")


QUESTIONS: tuple[QuizQuestion, ...] = (
    QuizQuestion(
        key="sharp",
        variants=(
            QuizVariant(
                text=(
                    "Both clips move the same way, but the right one is smeared and soft while "
                    "the left one is crisp. You prefer the left one for quality. Which reason "
                    "fits best?"
                ),
                options=(
                    ("pixel_sharpness", "Pixel sharpness"),
                    ("amount_of_motion", "Amount of motion"),
                    ("temporal_alignment", "Temporal text alignment"),
                ),
                answer="pixel_sharpness",
                explanation="Crisp versus soft is about pixel sharpness.",
            ),
            QuizVariant(
                text=(
                    "In the left clip the edges are fuzzy and fine detail is lost; the right one "
                    "shows every leaf of the tree. Both move alike. You prefer the right one for "
                    "quality. Which reason fits best?"
                ),
                options=(
                    ("pixel_sharpness", "Pixel sharpness"),
                    ("frame_consistency", "Object/scene consistency"),
                    ("spatial_alignment", "Spatial text alignment"),
                ),
                answer="pixel_sharpness",
                explanation="Lost detail and fuzzy edges are a matter of pixel sharpness.",
            ),
        ),
    ),
    QuizQuestion(
        key="direction",
        variants=(
            QuizVariant(
                text=(
                    "Prompt: “a dog runs to the left”. In the left clip the dog runs right; in "
                    "the right clip it runs left. What do you answer for faithfulness?"
                ),
                options=(
                    ("right_temporal", "Right, because of temporal text alignment"),
                    ("left_spatial", "Left, because of spatial text alignment"),
                    ("right_sharpness", "Right, because of pixel sharpness"),
                ),
                answer="right_temporal",
                explanation="The prompt describes a motion over time: temporal text alignment.",
            ),
            QuizVariant(
                text=(
                    "Prompt: “a balloon rises into the sky”. In the left clip the balloon sinks; "
                    "in the right clip it rises. What do you answer for faithfulness?"
                ),
                options=(
                    ("right_temporal", "Right, because of temporal text alignment"),
                    ("left_smoothness", "Left, because of motion smoothness"),
                    ("tie_good", "Tie, equally good"),
                ),
                answer="right_temporal",
                explanation=(
                    "Rising or sinking is what happens over time: the right clip follows the "
                    "prompt, for temporal text alignment."
                ),
            ),
        ),
    ),
    QuizQuestion(
        key="consistency",
        variants=(
            QuizVariant(
                text=(
                    "In the right clip a cup changes shape and colour from frame to frame; in the "
                    "left clip it stays the same cup. Which quality reason fits a choice for the "
                    "left clip?"
                ),
                options=(
                    ("frame_consistency", "Object/scene consistency"),
                    ("spatial_alignment", "Spatial text alignment"),
                    ("amount_of_motion", "Amount of motion"),
                ),
                answer="frame_consistency",
                explanation="Objects that keep their identity across frames are consistent.",
            ),
            QuizVariant(
                text=(
                    "In the left clip a person's face turns into someone else's halfway through; "
                    "in the right clip it stays the same person. Which quality reason fits a "
                    "choice for the right clip?"
                ),
                options=(
                    ("frame_consistency", "Object/scene consistency"),
                    ("temporal_alignment", "Temporal text alignment"),
                    ("motion_smoothness", "Motion smoothness"),
                ),
                answer="frame_consistency",
                explanation="A face that changes identity is an object that is not consistent.",
            ),
        ),
    ),
    QuizQuestion(
        key="tie",
        variants=(
            QuizVariant(
                text=(
                    "Both clips are equally off-prompt and you cannot tell them apart. The study "
                    "allows ties. What do you answer for faithfulness?"
                ),
                options=(
                    ("tie_bad", "Tie, equally bad"),
                    ("left_any", "Left, with any reason"),
                    ("skip", "Submit without an answer"),
                ),
                answer="tie_bad",
                explanation="A tie needs its own reason: equally good or equally bad.",
            ),
            QuizVariant(
                text=(
                    "Both clips show exactly what the prompt describes and you cannot tell them "
                    "apart. The study allows ties. What do you answer for faithfulness?"
                ),
                options=(
                    ("tie_good", "Tie, equally good"),
                    ("tie_bad", "Tie, equally bad"),
                    ("right_any", "Right, with any reason"),
                ),
                answer="tie_good",
                explanation="Both match the prompt: a tie, with the reason “equally good”.",
            ),
        ),
    ),
    QuizQuestion(
        key="reasons",
        variants=(
            QuizVariant(
                text="Can you submit a choice without selecting a reason?",
                options=(
                    ("no", "No: every choice needs at least one reason"),
                    ("yes", "Yes, reasons are optional"),
                    ("tie_only", "Only for ties"),
                ),
                answer="no",
                explanation="JUICE: raters justify every choice with at least one reason.",
            ),
            QuizVariant(
                text="You chose the left clip for quality. How many reasons do you select?",
                options=(
                    ("all_that_apply", "Every reason that applies, at least one"),
                    ("none", "None: the choice is enough"),
                    ("exactly_two", "Exactly two"),
                ),
                answer="all_that_apply",
                explanation="Justify every choice: select all reasons that apply, at least one.",
            ),
        ),
    ),
)


def paper(seed: bytes) -> tuple[PaperQuestion, ...]:
    """The questions one attempt shows, drawn and shuffled from `seed` (same seed, same paper).

    The right answers are spread over the option positions as evenly as possible (with five
    questions of three options: 2, 2 and 1), so no single position passes.
    """
    rng = random.Random(seed)
    width = min(len(v.options) for q in QUESTIONS for v in q.variants)
    positions = [i % width for i in range(len(QUESTIONS))]
    rng.shuffle(positions)
    out = []
    for question, position in zip(QUESTIONS, positions, strict=True):
        variant = question.variants[rng.randrange(len(question.variants))]
        others = [option for option in variant.options if option[0] != variant.answer]
        rng.shuffle(others)
        right = next(option for option in variant.options if option[0] == variant.answer)
        ordered = others[:position] + [right] + others[position:]

        def opaque(key: str, question_key: str = question.key) -> str:
            text = f"{question_key}:{key}".encode()
            return "o" + hashlib.blake2b(text, key=seed[:64], digest_size=6).hexdigest()

        out.append(
            PaperQuestion(
                key=question.key,
                text=variant.text,
                options=tuple((opaque(key), label) for key, label in ordered),
                answer=opaque(variant.answer),
                explanation=variant.explanation,
            )
        )
    return tuple(out)
