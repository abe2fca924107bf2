"""Every hand-written SQL statement of the rating hot path, and the model instances built from it.

Rating runs a few statements on every request; compiling them through the ORM cost more CPU
than PostgreSQL spent running them, so they are written out here, once, with table and column
names taken from the models' `_meta`. Nothing else in the project writes SQL for rating:
selectors and services call the functions below. Each statement has an ORM equivalent that
tests/raters/test_hot_path.py checks it against, on SQLite and on PostgreSQL.

Rows become instances as `QuerySet.only()` would build them (`instance`): values converted as
the ORM converts them, the other fields loaded on first use.

Locks: `locked_profile` and the claims lock rows (FOR UPDATE, SKIP LOCKED) where the database
has row locks; SQLite, which serialises writers, gets the same statements without them. Two
statements write and read at once on PostgreSQL, to save a round trip each: a task's insert
returns its page's data, and a submit's flip to done inserts the judgment (atomic by itself,
so it needs no transaction); SQLite runs each as two statements.
"""

from __future__ import annotations

import functools
import itertools
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from django.db import connection, transaction
from django.db.models import Field, Model

from generation.models import Prompt, Video

from .models import Assignment, Comparison, GoldClip, Judgment, PresentedClip, Rater

M = TypeVar("M", bound=Model)

# --- building instances from rows -------------------------------------------------------------


def columns(model: type[Model], alias: str, names: Sequence[str] | None = None) -> str:
    """`alias.column, ...` for the given attnames (all concrete fields by default), in the
    model's field order: the order `instance` wants its values in."""
    return ", ".join(f"{alias}.{field.column}" for field in _fields(model, _key(names)))


def instance(
    model: type[M], values: Sequence[Any] | Mapping[str, Any], names: Sequence[str] | None = None
) -> M:
    """An instance of `model` from the raw values of `columns(model, alias, names)`, or from
    {attname: raw value}."""
    if isinstance(values, Mapping):
        names = list(values)
        values = [values[f.attname] for f in _fields(model, _key(names))]
    fields, converters = _plan(model, _key(names), connection.alias)
    converted = list(values)
    for index, col, functions in converters:
        value = converted[index]
        for convert in functions:
            value = convert(value, col, connection)
        converted[index] = value
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def _key(names: Sequence[str] | None) -> tuple[str, ...] | None:
    return tuple(sorted(names)) if names is not None else None


@functools.cache
def _fields(model: type[Model], names: tuple[str, ...] | None) -> list[Any]:
    return [f for f in model._meta.concrete_fields if names is None or f.attname in names]


@functools.cache
def _plan(
    model: type[Model], names: tuple[str, ...] | None, alias: str
) -> tuple[list[Any], list[tuple[int, Any, list[Any]]]]:
    fields = _fields(model, names)
    converters = []
    for index, field in enumerate(fields):
        col = field.get_col(model._meta.db_table)
        functions = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if functions:
            converters.append((index, col, functions))
    return fields, converters


# --- names from the models --------------------------------------------------------------------


def _table(model: type[Model]) -> str:
    return model._meta.db_table


def _field(model: type[Model], name: str) -> Field[Any, Any]:
    field = model._meta.get_field(name)
    assert isinstance(field, Field)  # a concrete column, not a reverse relation
    return field


def _col(model: type[Model], name: str) -> str:
    return str(_field(model, name).column)


def _literal(value: str) -> str:
    """A choice's value as an SQL string literal (choices are fixed identifiers, never input)."""
    assert "'" not in value
    return f"'{value}'"


A, C, J, R = _table(Assignment), _table(Comparison), _table(Judgment), _table(Rater)
_ACTIVE, _DONE, _EXPIRED = (_literal(s) for s in Assignment.Status)
_REAL = _literal(Comparison.Kind.REAL)
_GOLD = _literal(Comparison.Kind.GOLD)
_MIRROR = _literal(Comparison.Kind.MIRROR)
_KINDS = tuple(Comparison.Kind)
_a = functools.partial(_col, Assignment)
_c = functools.partial(_col, Comparison)


def _row(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()  # type: ignore[no-any-return]


def _for_update(skip_locked: bool = False) -> str:
    features = connection.features
    if skip_locked:
        return " FOR UPDATE SKIP LOCKED" if features.has_select_for_update_skip_locked else ""
    return " FOR UPDATE" if features.has_select_for_update else ""


# --- the signed-in user -----------------------------------------------------------------------

# What rating reads of a profile with the user; other fields load on first use.
PROFILE_FIELDS = ("id", "user_id", "is_flagged", "qualified_at", "is_simulated")


def _user_and_profile() -> tuple[str, str]:
    """The user `u` and their profile `r` (PROFILE_FIELDS): the select list, and the joins
    that follow the users table (read back by `_user_from_row`)."""
    from django.contrib.auth import get_user_model

    users = get_user_model()
    return (
        f"{columns(users, 'u')}, {columns(Rater, 'r', PROFILE_FIELDS)}",
        f"LEFT JOIN {R} r ON r.{_col(Rater, 'user')} = u.{users._meta.pk.column}",
    )


def _user_from_row(row: Sequence[Any]) -> Any:
    """The user of `_user_and_profile`'s columns, with `user.rater` set when they have a
    profile (a user without one raises Rater.DoesNotExist on `.rater`, as through the ORM)."""
    from django.contrib.auth import get_user_model

    users = get_user_model()
    width = len(users._meta.concrete_fields)
    user = instance(users, row[:width])
    if row[width] is not None:
        profile = instance(Rater, row[width:], PROFILE_FIELDS)
        profile.user = user
        user.rater = profile
    return user


@functools.cache
def _user_with_profile_sql() -> str:
    """The statement (built once: it runs on every request)."""
    from django.contrib.auth import get_user_model

    users = get_user_model()
    select, join = _user_and_profile()
    return (
        f"SELECT {select} FROM {_table(users)} u {join} "  # noqa: S608
        f"WHERE u.{users._meta.pk.column} = %s"
    )


def user_with_profile(user_id: Any) -> Any:
    """The user with `user.rater` set to their profile's PROFILE_FIELDS when they have one;
    None if there is no such user. ORM: User.objects.select_related("rater").get(pk=user_id)."""
    row = _row(_user_with_profile_sql(), (user_id,))
    return _user_from_row(row) if row is not None else None


# --- a rater's profile and assignments --------------------------------------------------------


@functools.cache
def _profile_sql() -> str:
    """The profile with its user (built once); on PostgreSQL only the profile's row is locked."""
    from django.contrib.auth import get_user_model

    users = get_user_model()
    lock = _for_update()
    if lock and connection.features.has_select_for_update_of:
        lock += " OF r"
    return (
        f"SELECT {columns(Rater, 'r')}, {columns(users, 'u')} FROM {R} r "  # noqa: S608
        f"JOIN {_table(users)} u ON u.{users._meta.pk.column} = r.{_col(Rater, 'user')} "
        f"WHERE r.{_col(Rater, 'user')} = %s{lock}"
    )


def locked_profile(user_id: int) -> Rater | None:
    """The rater's profile, row-locked until the transaction ends, with `profile.user` (and
    its `.rater`) loaded: the request's user, read in the same statement (see raters.auth,
    SessionUser). None if there is no profile. ORM: Rater.objects.select_related("user")
    .select_for_update(of=("self",)).get(user_id=user_id)."""
    from django.contrib.auth import get_user_model

    row = _row(_profile_sql(), (user_id,))
    if row is None:
        return None
    width = len(Rater._meta.concrete_fields)
    profile = instance(Rater, row[:width])
    user = instance(get_user_model(), row[width:])
    profile.user = user
    user.rater = profile
    return profile


# The state's columns: oldest open id, open, done, real seen, distinct real prompts, then
# taken (not expired) per kind in Comparison.Kind order; over assignments `a`, whose copies of
# their comparison's study, kind and prompt let the index assignment_rater_state answer alone.
def _state_columns(a: str, named: bool = False) -> str:
    """The state's columns over assignments `a` (`named`: as s0, s1...)."""
    parts = [
        f"MIN(CASE WHEN {a}.{_a('status')} = {_ACTIVE} THEN {a}.id END)",
        f"SUM(CASE WHEN {a}.{_a('status')} = {_ACTIVE} THEN 1 ELSE 0 END)",
        f"SUM(CASE WHEN {a}.{_a('status')} = {_DONE} THEN 1 ELSE 0 END)",
        f"SUM(CASE WHEN {a}.{_a('kind')} = {_REAL} THEN 1 ELSE 0 END)",
        f"COUNT(DISTINCT CASE WHEN {a}.{_a('kind')} = {_REAL} THEN {a}.{_a('prompt')} END)",
        *(
            f"SUM(CASE WHEN {a}.{_a('status')} <> {_EXPIRED} "
            f"AND {a}.{_a('kind')} = {_literal(kind)} THEN 1 ELSE 0 END)"
            for kind in _KINDS
        ),
    ]
    return ", ".join(f"{p} AS s{i}" if named else p for i, p in enumerate(parts))


_STATE_SQL = (
    f"SELECT {_state_columns('a')} FROM {A} a "  # noqa: S608
    f"WHERE a.{_a('rater')} = %s AND a.{_a('study')} = %s"
)


def rater_state_row(*, study_id: int, rater_id: int) -> tuple[Any, ...]:
    """A rater's assignments in a study counted in one row (see selectors.RaterState)."""
    row = _row(_STATE_SQL, (rater_id, study_id))
    assert row is not None  # an aggregate without GROUP BY always answers one row
    return row


STATE_KINDS = _KINDS

# --- claims -----------------------------------------------------------------------------------

# What a rater has already seen in a study, as subqueries: PostgreSQL hashes each once and still
# walks the (study, kind, assigned_count, id) index in order, stopping at the first free row.
_SEEN_COMPARISONS = f"SELECT {_a('comparison')} FROM {A} WHERE {_a('rater')} = %s"  # noqa: S608
# Prompts of every task (real, gold or mirror) the rater has had in the study; of real ones only.
_SEEN_STUDY_PROMPTS = (
    f"SELECT {_a('prompt')} FROM {A} WHERE {_a('rater')} = %s AND {_a('study')} = %s"  # noqa: S608
)
_SEEN_PROMPTS = f"{_SEEN_STUDY_PROMPTS} AND {_a('kind')} = {_REAL}"
_CLAIM = (
    f"UPDATE {C} SET {_c('assigned_count')} = {_c('assigned_count')} + 1 "  # noqa: S608
    "WHERE id = ({pick}) AND {count} < %s RETURNING id, {count}, {prompt}"
)


def _claim_sql(pick: str) -> str:
    return _CLAIM.format(pick=pick, count=_c("assigned_count"), prompt=_c("prompt"))


@functools.cache
def _first_free_sql(repeat_prompts: bool, skip_locked: str) -> str:
    where = f"{_c('study')} = %s AND {_c('kind')} = {_REAL} AND {_c('assigned_count')} < %s "
    where += f"AND {_c('is_ready')} AND "
    if repeat_prompts:
        where += f"id NOT IN ({_SEEN_COMPARISONS})"
    else:
        # A real comparison of this study that the rater has had is a prompt of theirs among
        # this study's real tasks, so the unseen-prompt filter excludes it too: the rater's
        # tasks are read once, not twice.
        where += f"{_c('prompt')} NOT IN ({_SEEN_PROMPTS})"
    pick = (
        f"SELECT id FROM {C} WHERE {where} "  # noqa: S608
        f"ORDER BY {_c('assigned_count')}, id LIMIT 1{skip_locked}"
    )
    return _claim_sql(pick)


def claim_first_free(
    *, study_id: int, raters_per_pair: int, rater_id: int, repeat_prompts: bool
) -> tuple[int, int, int] | None:
    """Take one slot of the first free real comparison of a fixed-mode study for this rater:
    fewest raters so far, then oldest, unseen, prompt new unless repeats are allowed; rows
    another request has locked are skipped. One statement picks, locks and counts (the
    conditional increment never passes k). (comparison id, its slot 1..k, prompt id) or None.
    ORM: selectors.real_candidates(...).order_by("assigned_count", "id").first(), then
    filter(pk=..., assigned_count__lt=k).update(assigned_count=F(...) + 1)."""
    params: list[Any] = [study_id, raters_per_pair]
    params += [rater_id] if repeat_prompts else [rater_id, study_id]
    sql = _first_free_sql(repeat_prompts, _for_update(skip_locked=True))
    row = _row(sql, (*params, raters_per_pair))
    return (row[0], row[1], row[2]) if row is not None else None


_CLAIM_ONE_SQL = _claim_sql("%s")


def claim_comparison(*, comparison_id: int, raters_per_pair: int) -> tuple[int, int, int] | None:
    """Take one slot of this real comparison if it has one left: as `claim_first_free`.
    ORM: Comparison.objects.filter(pk=id, assigned_count__lt=k).update(assigned_count=F + 1)."""
    row = _row(_CLAIM_ONE_SQL, (comparison_id, raters_per_pair))
    return (row[0], row[1], row[2]) if row is not None else None


_GOLD_CLAIM_SQL = (
    f"UPDATE {C} SET {_c('assigned_count')} = {_c('assigned_count')} + 1 "  # noqa: S608
    f"WHERE id = (SELECT id FROM {C} WHERE {_c('study')} = %s AND {_c('kind')} = {_GOLD} "
    f"AND id NOT IN ({_SEEN_COMPARISONS}) "
    f"ORDER BY CASE WHEN {_c('prompt')} IN ({_SEEN_STUDY_PROMPTS}) THEN 1 ELSE 0 END, RANDOM() "
    f"LIMIT 1) RETURNING id, {_c('prompt')}"
)


def claim_gold(*, study_id: int, rater_id: int) -> tuple[int, int] | None:
    """Count one more rater on a gold comparison of the study that this rater has not had, at
    random among those whose prompt the rater has not met in this study (a prompt coming back
    would give the check away), else among the rest: picked and counted in one statement, as a
    real task is. (id, prompt id) or None.
    ORM: Comparison.objects.filter(study_id=..., kind=GOLD).exclude(assignments__rater_id=...)
    .annotate(met=Exists(the rater's assignments in the study with that prompt))
    .order_by("met", "?").first(), then its assigned_count + 1."""
    row = _row(_GOLD_CLAIM_SQL, (study_id, rater_id, rater_id, study_id))
    return (row[0], row[1]) if row is not None else None


INSERTED_FIELDS = (
    "comparison_id",
    "rater_id",
    "study_id",
    "kind",
    "prompt_id",
    "token",
    "left_is_a",
    "status",
    "expires_at",
    "created_at",
)


@functools.cache
def _insert_sql() -> tuple[str, list[Field[Any, Any]]]:
    fields = [_field(Assignment, name.removesuffix("_id")) for name in INSERTED_FIELDS]
    sql = (
        f"INSERT INTO {A} ({', '.join(str(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({_a('comparison')}, {_a('rater')}) DO NOTHING RETURNING id"
    )
    if connection.vendor == "postgresql":
        # The page's data in the same statement, from the inserted row as RETURNING gives it
        # (a statement does not see its own insert in the table).
        returning = f"{_a('token')}, {_a('left_is_a')}, {_a('comparison')}"
        sql = f"WITH new AS ({sql}, {returning}) {_payload_select('new')}"
    return sql, fields


def insert_assignment(assignment: Assignment) -> tuple[int, tuple[Any, ...]] | None:
    """Insert an unsaved assignment (the INSERTED_FIELDS set): its id and its page's
    `payload_row`, or None if the rater already holds that comparison. On PostgreSQL one
    statement inserts and reads the page's data; elsewhere two. ORM:
    Assignment.objects.bulk_create([a], ignore_conflicts=True), then payload_row(id)."""
    sql, fields = _insert_sql()
    # The values as the ORM would send them (SQLite keeps UUIDs as hex, dates as text).
    values = [f.get_db_prep_save(getattr(assignment, f.attname), connection) for f in fields]
    row = _row(sql, values)
    if connection.vendor == "postgresql":
        return (row[-1], _payload(row[:-1])) if row is not None else None
    if row is None:
        return None
    payload = payload_row(row[0])
    assert payload is not None  # inserted just now, in this transaction
    return row[0], payload


# --- mirrors ----------------------------------------------------------------------------------

MIRROR_FIELDS = (
    "left_is_a",
    "comparison_id",
    "pair_id",
    "prompt_id",
    "video_a_id",
    "video_b_id",
    "shown_a_id",
    "shown_b_id",
    "mirror_id",
)
_MIRROR_SOURCE_SQL = (
    f"SELECT a.{_a('left_is_a')}, c.id, c.{_c('pair')}, c.{_c('prompt')}, "  # noqa: S608
    f"c.{_c('video_a')}, c.{_c('video_b')}, c.{_c('shown_a')}, c.{_c('shown_b')}, m.id "
    f"FROM {A} a JOIN {C} c ON c.id = a.{_a('comparison')} "
    f"LEFT JOIN {C} m ON m.{_c('mirror_of')} = c.id AND m.{_c('kind')} = {_MIRROR} "
    f"WHERE a.{_a('rater')} = %s AND c.{_c('study')} = %s AND c.{_c('kind')} = {_REAL} "
    f"AND a.{_a('status')} = {_DONE} "
    f"AND a.id NOT IN (SELECT ra.id FROM {A} ra "
    f"WHERE ra.{_a('rater')} = %s AND ra.{_a('study')} = %s ORDER BY ra.id DESC LIMIT 2) "
    f"AND (m.id IS NULL OR m.id NOT IN ({_SEEN_COMPARISONS})) "
    "ORDER BY RANDOM() LIMIT 1"
)


def mirror_source_row(*, study_id: int, rater_id: int) -> tuple[Any, ...] | None:
    """A real task the rater finished, not among their last two, whose mirror (if another
    rater's repeat made it) they have not seen, at random: the MIRROR_FIELDS, or None."""
    row = _row(_MIRROR_SOURCE_SQL, (rater_id, study_id, rater_id, study_id, rater_id))
    return (bool(row[0]), *row[1:]) if row is not None else None


# --- what a task shows, and what a submit reads ----------------------------------------------


def _v(name: str) -> str:
    return _col(Video, name)


def _p(name: str) -> str:
    return _col(PresentedClip, name)


# Presented clips (sa, sb) stand in for both videos when the pair needed one presentation.
def _payload_select(assignments: str) -> str:
    """The page's data of the assignments in `assignments` (a table, or a statement's RETURNING
    rows: its id, token, left_is_a and comparison_id columns)."""
    return (
        f"SELECT a.{_a('token')}, a.{_a('left_is_a')}, c.{_c('gold_clip')}, "  # noqa: S608
        f"p.{_col(Prompt, 'text')}, COALESCE(sa.{_p('fps')}, va.{_v('fps')}), "
        f"COALESCE(sb.{_p('fps')}, vb.{_v('fps')}), "
        f"COALESCE(sa.{_p('poster')}, va.{_v('poster')}), "
        f"COALESCE(sb.{_p('poster')}, vb.{_v('poster')}), g.{_col(GoldClip, 'poster')}, a.id "
        f"FROM {assignments} a JOIN {C} c ON c.id = a.{_a('comparison')} "
        f"JOIN {_table(Prompt)} p ON p.id = c.{_c('prompt')} "
        f"JOIN {_table(Video)} va ON va.id = c.{_c('video_a')} "
        f"JOIN {_table(Video)} vb ON vb.id = c.{_c('video_b')} "
        f"LEFT JOIN {_table(PresentedClip)} sa ON sa.id = c.{_c('shown_a')} "
        f"LEFT JOIN {_table(PresentedClip)} sb ON sb.id = c.{_c('shown_b')} "
        f"LEFT JOIN {_table(GoldClip)} g ON g.id = c.{_c('gold_clip')}"
    )


_PAYLOAD_SQL = f"{_payload_select(A)} WHERE a.id = %s"


def payload_row(assignment_id: int) -> tuple[Any, ...] | None:
    """(token as str, left_is_a, gold clip id, prompt text, fps of A, fps of B, poster of A,
    poster of B, gold clip poster): what the page of a task shows, or None."""
    row = _row(_PAYLOAD_SQL, (assignment_id,))
    return _payload(row[:-1]) if row is not None else None


def _payload(row: tuple[Any, ...]) -> tuple[Any, ...]:
    token = row[0] if isinstance(row[0], uuid.UUID) else uuid.UUID(row[0])
    return (str(token), bool(row[1]), *row[2:])


SUBMIT_COMPARISON_FIELDS = ("id", "study_id", "kind", "gold_question", "mirror_of_id")


def _token_param(token: str) -> Any:
    """An assignment token as the database takes it (SQLite keeps UUIDs as hex); None for a
    malformed one, which no assignment has."""
    try:
        return _field(Assignment, "token").get_db_prep_value(uuid.UUID(str(token)), connection)
    except (ValueError, TypeError, AttributeError):
        return None


@functools.cache
def _submit_sql() -> str:
    """The statement (built once). The rater's state in the task's study (rater_state_row's
    columns) comes with the task, read before the submit writes anything (so it still counts
    the task as open), and so does the user with their profile (user_with_profile's columns):
    each would otherwise cost the submit a statement."""
    from django.contrib.auth import get_user_model

    users = get_user_model()
    pk = users._meta.pk.column
    # The state as a one-row derived table (an aggregate without GROUP BY), its study found by
    # the token: grouping the task's wide row by itself instead sorted every counted row.
    state = (
        f"SELECT {_state_columns('sa', named=True)} FROM {A} sa "  # noqa: S608
        f"WHERE sa.{_a('rater')} = %s AND sa.{_a('study')} = (SELECT ta.{_a('study')} "
        f"FROM {A} ta WHERE ta.{_a('token')} = %s)"
    )
    user_select, profile_join = _user_and_profile()
    return (
        f"SELECT {columns(Assignment, 'a')}, "  # noqa: S608
        f"{columns(Comparison, 'c', SUBMIT_COMPARISON_FIELDS)}, j.id, {user_select}, s.* "
        f"FROM {A} a JOIN {C} c ON c.id = a.{_a('comparison')} "
        f"LEFT JOIN {J} j ON j.{_col(Judgment, 'assignment')} = a.id "
        f"JOIN {_table(users)} u ON u.{pk} = a.{_a('rater')} {profile_join} "
        f"CROSS JOIN ({state}) s "
        f"WHERE a.{_a('token')} = %s AND a.{_a('rater')} = %s"
    )


def assignment_for_submit(
    *, token: str, rater_id: int
) -> tuple[Assignment, Comparison, int | None, Any, tuple[Any, ...]] | None:
    """The rater's own assignment by its token, its comparison (SUBMIT_COMPARISON_FIELDS), its
    judgment's id if any, the rater's user as user_with_profile loads it, and the rater's
    state in the comparison's study as rater_state_row reads it; None for a malformed token or
    another rater's. ORM: Assignment.objects.select_related("comparison", "judgment",
    "rater__rater").get(token=..., rater_id=...), then rater_state_row(study_id=its study,
    rater_id=...)."""
    from django.contrib.auth import get_user_model

    value = _token_param(token)
    if value is None:
        return None
    row = _row(_submit_sql(), (rater_id, value, value, rater_id))
    if row is None:
        return None
    users = get_user_model()
    ends = list(
        itertools.accumulate(
            (
                len(Assignment._meta.concrete_fields),
                len(SUBMIT_COMPARISON_FIELDS),
                1,
                len(users._meta.concrete_fields),
                len(PROFILE_FIELDS),
            )
        )
    )
    found = instance(Assignment, row[: ends[0]])
    comparison = instance(Comparison, row[ends[0] : ends[1]], SUBMIT_COMPARISON_FIELDS)
    user = _user_from_row(row[ends[2] : ends[4]])
    return found, comparison, row[ends[1]], user, row[ends[4] :]


# --- a clip of a task -------------------------------------------------------------------------

# What clip requests read: the comparison's clip links, and each clip's file and poster.
CLIP_COMPARISON_FIELDS = (
    "id",
    "video_a_id",
    "video_b_id",
    "gold_clip_id",
    "shown_a_id",
    "shown_b_id",
)
CLIP_FILE_FIELDS = ("id", "file", "poster")
# Each link of the comparison to a clip, with the clip's model and its alias in the statement.
_CLIP_SOURCES = (
    ("video_a", Video, "va"),
    ("video_b", Video, "vb"),
    ("gold_clip", GoldClip, "g"),
    ("shown_a", PresentedClip, "sa"),
    ("shown_b", PresentedClip, "sb"),
)


@functools.cache
def _clip_sql() -> str:
    """The statement (built once: it runs for every clip a rater's browser asks for)."""
    joins = " ".join(
        f"{'JOIN' if model is Video else 'LEFT JOIN'} {_table(model)} {alias} "
        f"ON {alias}.id = c.{_c(link)}"
        for link, model, alias in _CLIP_SOURCES
    )
    files = ", ".join(
        columns(model, alias, CLIP_FILE_FIELDS) for _link, model, alias in _CLIP_SOURCES
    )
    return (
        f"SELECT {columns(Assignment, 'a')}, "  # noqa: S608
        f"{columns(Comparison, 'c', CLIP_COMPARISON_FIELDS)}, {files} "
        f"FROM {A} a JOIN {C} c ON c.id = a.{_a('comparison')} {joins} "
        f"WHERE a.{_a('token')} = %s AND a.{_a('rater')} = %s"
    )


def assignment_for_clip(*, token: str, rater_id: int) -> Assignment | None:
    """The rater's own assignment by its token, with `assignment.comparison` (the
    CLIP_COMPARISON_FIELDS) and its videos, gold clip and presented clips (CLIP_FILE_FIELDS)
    loaded; None for a malformed token or another rater's. ORM: Assignment.objects
    .select_related("comparison__video_a", "comparison__video_b", "comparison__gold_clip",
    "comparison__shown_a", "comparison__shown_b").get(token=..., rater_id=...)."""
    value = _token_param(token)
    if value is None:
        return None
    row = _row(_clip_sql(), (value, rater_id))
    if row is None:
        return None
    start = len(Assignment._meta.concrete_fields)
    assignment = instance(Assignment, row[:start])
    end = start + len(CLIP_COMPARISON_FIELDS)
    comparison = instance(Comparison, row[start:end], CLIP_COMPARISON_FIELDS)
    width = len(CLIP_FILE_FIELDS)
    for k, (link, model, _alias) in enumerate(_CLIP_SOURCES):
        values = row[end + k * width : end + (k + 1) * width]
        setattr(
            comparison,
            link,
            instance(model, values, CLIP_FILE_FIELDS) if values[0] is not None else None,
        )
    assignment.comparison = comparison
    return assignment


# --- recording a judgment ---------------------------------------------------------------------


@functools.cache
def _judgment_insert_sql() -> tuple[str, list[Field[Any, Any]]]:
    fields = [f for f in Judgment._meta.concrete_fields if not f.primary_key]
    names = ", ".join(str(f.column) for f in fields)
    marks = ", ".join(["%s"] * len(fields))
    flip = (
        f"UPDATE {A} SET {_a('status')} = {_DONE} "  # noqa: S608
        f"WHERE id = %s AND {_a('status')} = {_ACTIVE}"
    )
    if connection.vendor == "postgresql":
        # One statement, atomic by itself: the judgment is inserted only if the flip won. (The
        # casts: parameters in a SELECT list would otherwise be read as text.)
        typed = ", ".join(f"CAST(%s AS {f.db_type(connection)})" for f in fields)
        sql = (
            f"WITH flipped AS ({flip} RETURNING id) "  # noqa: S608
            f"INSERT INTO {J} ({names}) SELECT {typed} FROM flipped RETURNING id"
        )
        return sql, fields
    return f"{flip};INSERT INTO {J} ({names}) VALUES ({marks}) RETURNING id", fields  # noqa: S608


def insert_judgment_if_active(judgment: Judgment) -> int | None:
    """Flip the judgment's task from active to done and insert the (unsaved) judgment, both or
    neither: the new judgment's id, or None when the task was not active (a repeat, or
    expired). On PostgreSQL one statement that needs no transaction around it. ORM:
    filter(pk=..., status=ACTIVE).update(status=DONE), then judgment.save() if it won."""
    sql, fields = _judgment_insert_sql()
    values = [f.get_db_prep_save(f.pre_save(judgment, True), connection) for f in fields]
    if connection.vendor == "postgresql":
        row = _row(sql, [judgment.assignment_id, *values])
        return row[0] if row is not None else None
    flip, insert = sql.split(";")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(flip, (judgment.assignment_id,))
        if cursor.rowcount != 1:
            return None
        cursor.execute(insert, values)
        return int(cursor.fetchone()[0])
