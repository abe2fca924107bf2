"""The rating API: thin DRF views over raters.services and raters.selectors.

The rating page's two POSTs reach `next_answer` and `submit_answer` through raters.api_plain
without DRF; every other client of those URLs through the DRF views here."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, generics, permissions, serializers, status
from rest_framework.authentication import TokenAuthentication
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, services
from .auth import EndsRefusedSessions, RatingSessionAuthentication, confirm
from .models import Comparison, Judgment, Study
from .serializers import (
    ComparisonSerializer,
    JudgmentInputSerializer,
    RaterJudgmentSerializer,
    StaffJudgmentSerializer,
    TaskSerializer,
    study_data,
)

STUDY_FIELDS: dict[str, serializers.Field[Any, Any, Any, Any]] = {
    "slug": serializers.CharField(),
    "allow_ties": serializers.BooleanField(),
    "finished": serializers.BooleanField(),
    "stopped": serializers.BooleanField(),
    "completion_code": serializers.CharField(required=False),
    "screenout_code": serializers.CharField(required=False),
    "progress": serializers.DictField(),
}
StudyOut = inline_serializer("StudyForRater", STUDY_FIELDS)
StudyOutMany = inline_serializer("StudyForRaterList", STUDY_FIELDS, many=True)
JudgmentOut = inline_serializer(
    "JudgmentAccepted", {"id": serializers.IntegerField(), "progress": serializers.DictField()}
)


def _study_state(study: Study, user: Any) -> dict[str, Any]:
    """Finished (the completion code earned) / stopped, with the one code earned if any."""
    profile = selectors.rater_profile_or_blank(user=user)
    code = selectors.crowd_code(study=study, rater=user)
    state: dict[str, Any] = {
        "finished": code is not None and code.kind == "completion",
        "stopped": profile.is_flagged,
    }
    if code is not None:
        state[f"{code.kind}_code"] = code.code
    return state


class StudyList(APIView):
    @extend_schema(responses={200: StudyOutMany})
    def get(self, request: Request) -> Response:
        staff = request.user.is_staff
        studies = Study.objects.all() if staff else selectors.active_studies()
        return Response(
            [
                study_data(
                    study=s,
                    progress=selectors.rater_progress(study=s, rater=request.user),
                    state=_study_state(s, request.user),
                    staff=staff,
                )
                for s in studies
            ]
        )


class StudyDetail(APIView):
    @extend_schema(responses=StudyOut)
    def get(self, request: Request, slug: str) -> Response:
        study = get_object_or_404(Study, slug=slug)
        if not (study.is_active or request.user.is_staff):
            return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
        return Response(
            study_data(
                study=study,
                progress=selectors.rater_progress(study=study, rater=request.user),
                state=_study_state(study, request.user),
                staff=request.user.is_staff,
            )
        )


# The rating hot path's views: a session's user is confirmed by their first statement.
RATING_AUTHENTICATION = [RatingSessionAuthentication, TokenAuthentication]


class NextAssignment(EndsRefusedSessions, APIView):
    """The one call that claims a task (GETs claim nothing): the rater's open task if they have
    one, else a new one. Repeating it returns the same open task, so a retry is safe."""

    authentication_classes = RATING_AUTHENTICATION

    @extend_schema(
        description="Claim the next task, or get back the one already open: repeating the "
        "call (a retry, a reloaded page) returns the same task until it is answered.",
        request=None,
        responses={
            200: TaskSerializer,
            204: OpenApiResponse(description="Nothing left: see the study for the code."),
            403: OpenApiResponse(description="Not qualified, or stopped by quality control."),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        code, body = next_answer(request.user, slug)
        return Response(body, status=code)


def next_answer(user: Any, slug: str) -> tuple[int, dict[str, Any] | None]:
    """POST next's status and body for `user` (a SessionUser on the rating path: `confirm`ed
    by the first statement that reads them), whichever view received it."""
    study = selectors.study_for_rating(slug=slug, is_active=True)
    if study is None:
        confirm(user, None)  # a stale session is refused, not told what exists
        return status.HTTP_404_NOT_FOUND, {"detail": "Not found."}
    try:
        task = services.next_task(study=study, rater=user)
    except services.RatingRefused as refused:
        body = {"detail": refused.message, "code": refused.code}
        # Refused before its first statement read the user (a closed study): confirm now.
        rater = confirm(user, None)
        code = selectors.crowd_code(study=study, rater=rater)
        if code is not None and code.kind == "screenout":
            body["screenout_code"] = code.code
        return status.HTTP_403_FORBIDDEN, body
    if task.payload is None:
        return status.HTTP_204_NO_CONTENT, None
    return status.HTTP_200_OK, task.payload


class JudgmentPagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000


class JudgmentListCreate(EndsRefusedSessions, generics.ListAPIView[Any]):
    """GET: own judgments (staff: all). POST: record one judgment, once per token."""

    authentication_classes = RATING_AUTHENTICATION
    pagination_class = JudgmentPagination

    def get_queryset(self) -> Any:
        judgments = Judgment.objects.select_related(
            "assignment__comparison__study", "assignment__rater"
        ).order_by("id")
        if self.request.user.is_staff:
            return judgments
        # IsAuthenticated (the default permission) let only signed-in users this far.
        return judgments.filter(assignment__rater_id=self.request.user.pk)

    def get_serializer_class(self) -> Any:
        if self.request.method == "POST":
            return JudgmentInputSerializer
        return StaffJudgmentSerializer if self.request.user.is_staff else RaterJudgmentSerializer

    @extend_schema(request=JudgmentInputSerializer, responses={201: JudgmentOut, 200: JudgmentOut})
    def post(self, request: Request) -> Response:
        given = JudgmentInputSerializer(data=request.data)
        if not given.is_valid():
            confirm(request.user, None)  # a stale session is refused, not told what was wrong
            raise exceptions.ValidationError(given.errors)
        code, body = submit_answer(request.user, given.validated_data)
        return Response(body, status=code)


def submit_answer(user: Any, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST judgments' status and body for `user`, given the input as JudgmentInputSerializer
    validates it, whichever view received it."""
    assignment = selectors.assignment_for_submit(token=str(data["token"]), rater=user)
    if assignment is None:
        return status.HTTP_404_NOT_FOUND, {"detail": "No such task."}
    try:
        judgment, created = services.record_judgment(
            assignment=assignment,
            quality=services.Answer(data["quality"], tuple(data["quality_reasons"])),
            faithfulness=services.Answer(data["faithfulness"], tuple(data["faithfulness_reasons"])),
            watch=services.WatchReport(
                played_through=data["played_through"],
                watch_ms=data["watch_ms"],
                time_spent_ms=data["time_spent_ms"],
                replays=data["replays"],
                seeks=data["seeks"],
            ),
        )
    except services.RatingRefused as refused:
        return status.HTTP_403_FORBIDDEN, {"detail": refused.message, "code": refused.code}
    except ValidationError as exc:
        return status.HTTP_400_BAD_REQUEST, _field_errors(exc)
    study = assignment.comparison.study
    state = selectors.submit_state(assignment)  # read with the assignment: no statement
    body = {
        "id": judgment.id,
        "progress": selectors.rater_progress(study=study, rater=user, state=state),
    }
    return (status.HTTP_201_CREATED if created else status.HTTP_200_OK), body


class ComparisonList(generics.ListAPIView[Any]):
    permission_classes = [permissions.IsAdminUser]
    serializer_class = ComparisonSerializer
    pagination_class = JudgmentPagination

    def get_queryset(self) -> Any:
        comparisons = Comparison.objects.select_related(
            "study", "pair__variant_a", "pair__variant_b", "prompt"
        ).annotate(judgment_count=Count("assignments__judgment"))
        study = self.request.query_params.get("study")
        if study:
            comparisons = comparisons.filter(study__slug=study)
        return comparisons.order_by("id")


class RaterMe(APIView):
    @extend_schema(
        responses=inline_serializer(
            "RaterStats",
            {
                "username": serializers.CharField(),
                "qualified": serializers.BooleanField(),
                "stopped": serializers.BooleanField(),
                "judgments": serializers.IntegerField(),
                "gold_accuracy": serializers.FloatField(allow_null=True, required=False),
                "mirror_consistency": serializers.FloatField(allow_null=True, required=False),
            },
        )
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.rater_stats(user=request.user, with_checks=request.user.is_staff))


def _field_errors(exc: ValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {field: list(messages) for field, messages in exc.message_dict.items()}
    return {"non_field_errors": list(exc.messages)}
