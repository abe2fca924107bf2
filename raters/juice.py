"""The JUICE protocol's questions and reasons (docs/protocol.md): one source for page and server."""

QUALITY_QUESTION = "Which video do you prefer?"
FAITHFULNESS_QUESTION = "Which video aligns better with the text prompt?"
REASONS_PROMPT = "Which factors contributed towards making this choice? (Select all that apply)"

QUALITY_REASONS: dict[str, str] = {
    "pixel_sharpness": "Pixel sharpness",
    "motion_smoothness": "Motion smoothness",
    "recognizable_objects": "Recognizable objects/scenes",
    "frame_consistency": "Object/scene consistency",
    "amount_of_motion": "Amount of motion",
}
FAITHFULNESS_REASONS: dict[str, str] = {
    "spatial_alignment": "Spatial text alignment",
    "temporal_alignment": "Temporal text alignment",
}
TIE_REASONS: dict[str, str] = {
    "equally_good": "Equally good",
    "equally_bad": "Equally bad",
}

QUESTIONS: dict[str, dict[str, str]] = {
    "quality": QUALITY_REASONS,
    "faithfulness": FAITHFULNESS_REASONS,
}
QUESTION_TEXT: dict[str, str] = {
    "quality": QUALITY_QUESTION,
    "faithfulness": FAITHFULNESS_QUESTION,
}


def missing_choice(question: str) -> str:
    """What a rater reads when a question has no (or no valid) choice: it names the question."""
    return (
        f"{question.capitalize()} ({QUESTION_TEXT[question]}): choose the left video, "
        "the right video or a tie."
    )


def allowed_reasons(question: str, choice: str) -> dict[str, str]:
    """The reasons a rater may give for `choice` ('a', 'b' or 'tie') on `question`."""
    return TIE_REASONS if choice == "tie" else QUESTIONS[question]
