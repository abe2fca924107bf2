"""Writes that show both clips of a comparison in one presentation, so format never tells.

When a comparison's two videos differ in size, frame rate or length (an imported video against a
rendered one, say), each is prepared once per study in the pair's shared presentation
(`generation.video.presentation`) by the `raters.prepare_clip` task on the `default` queue, and
the comparison is handed out only once both are ready. Pairs already alike are shown as stored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import tempfile
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from generation.models import GenerationBatch, Video
from generation.services import move_into_storage
from generation.video.export import delivered_size
from generation.video.presentation import ClipFormat, Presentation, common_presentation

from .models import Comparison, PresentedClip


def delivered_format(video: Video) -> ClipFormat:
    """The stored file's format, from its row: rendered videos are stored enlarged."""
    if video.job.batch.kind == GenerationBatch.Kind.IMPORT:
        width, height = video.width, video.height
    else:
        height, width = delivered_size(video.height, video.width)
    return ClipFormat(width=width, height=height, fps=video.fps, frames=video.frames)


def present_comparisons(*, comparisons: Iterable[Comparison]) -> int:
    """Give each comparison whose videos differ in format its two prepared clips (made by a
    task after commit); returns how many needed one."""
    from .tasks import prepare_clip

    comparisons = list(comparisons)
    ids = {c.video_a_id for c in comparisons} | {c.video_b_id for c in comparisons}
    videos = Video.objects.select_related("job__batch").in_bulk(ids)
    needed = 0
    for comparison in comparisons:
        a, b = videos[comparison.video_a_id], videos[comparison.video_b_id]
        target = common_presentation(delivered_format(a), delivered_format(b))
        if target is None:
            continue
        shown = [_clip(comparison.study_id, video, target) for video in (a, b)]
        comparison.shown_a, comparison.shown_b = shown
        comparison.is_ready = all(clip.is_prepared for clip in shown)
        comparison.save(update_fields=["shown_a", "shown_b", "is_ready"])
        for clip in shown:
            if not clip.is_prepared:
                prepare_clip.delay_on_commit(clip.pk)
        needed += 1
    return needed


def _clip(study_id: int, video: Video, target: Presentation) -> PresentedClip:
    clip, _ = PresentedClip.objects.get_or_create(
        study_id=study_id,
        video=video,
        presentation=target.key(),
        defaults={
            "width": target.width,
            "height": target.height,
            "fps": target.fps,
            "frames": target.frames,
        },
    )
    return clip


def prepare_clip(*, clip_id: int) -> bool:
    """Render one clip in its presentation, publish it, and release the comparisons it
    completes; safe to run twice (False when there was nothing to do)."""
    from generation.video.presentation import present

    clip = PresentedClip.objects.select_related("video").filter(pk=clip_id).first()
    if clip is None or clip.is_prepared:
        return False
    target = Presentation(width=clip.width, height=clip.height, fps=clip.fps, frames=clip.frames)
    storage = PresentedClip._meta.get_field("file").storage
    stem = _opaque_stem(clip.pk)
    with tempfile.TemporaryDirectory(prefix="juice-present-") as tmp:
        source = _local_copy(clip.video, tmp)
        mp4, poster = os.path.join(tmp, "shown.mp4"), os.path.join(tmp, "shown.png")
        present(source, target, mp4, poster)
        with transaction.atomic():
            clip = PresentedClip.objects.select_for_update().get(pk=clip_id)
            if clip.is_prepared:
                return False
            clip.poster.name = move_into_storage(storage, poster, f"clips/{stem}.png")
            clip.file.name = move_into_storage(storage, mp4, f"clips/{stem}.mp4")
            clip.error = ""
            clip.save(update_fields=["file", "poster", "error"])
            _release(clip)
    return True


def _release(clip: PresentedClip) -> None:
    """Comparisons whose two clips are now both prepared may be handed out."""
    waiting = Comparison.objects.filter(Q(shown_a=clip) | Q(shown_b=clip), is_ready=False)
    for comparison in waiting.select_related("shown_a", "shown_b"):
        if comparison.shown_a.is_prepared and comparison.shown_b.is_prepared:  # type: ignore[union-attr]
            Comparison.objects.filter(pk=comparison.pk).update(is_ready=True)


def _local_copy(video: Video, folder: str) -> str:
    try:
        return str(video.file.path)
    except NotImplementedError:  # remote storage: bring the file here first
        target = os.path.join(folder, "source.mp4")
        with video.file.open("rb") as source, open(target, "wb") as handle:
            shutil.copyfileobj(source, handle)
        return target


def _opaque_stem(clip_id: int) -> str:
    """The same name for every preparation of a clip, that says nothing about its video."""
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"presented-clip:{clip_id}".encode(), hashlib.sha256).hexdigest()[:32]
