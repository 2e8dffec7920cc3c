"""Every list of the API answers one envelope, `{"items": [...], "total": N, "next": cursor | null}`,
read with keyset pagination.

- `limit` (1..MAX_LIMIT, default DEFAULT_LIMIT) rows per page; `next` is an opaque cursor for the
  following page (`?cursor=...` with the same filters), null on the last page.
- The cursor carries the sort key of the page's last row and a fingerprint of the filters: a page
  is found through the index whatever its depth, rows inserted meanwhile never shift it, and a
  cursor sent with other filters is refused (422 on `cursor`) rather than answering a mixed list.
  It is opaque: its contents may change between versions (a cursor is valid for the version that
  gave it, not stored for good).
- `offset` is kept, deprecated, for the clients written before the envelope: it still works (and
  still answers `next`, so such a client can move to cursors at any page) but costs a scan of
  every skipped row; it cannot be combined with `cursor`.
- `total` counts every row matching the filters (not only the remaining ones), through the same
  index as the page; `benchmarks/list_pages.py` measures it.
- Unknown query parameters are refused (422 naming the parameter): a misspelt filter (`?stauts=`)
  must not silently answer the whole list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, func, literal, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from fiscalgate.core.errors import Problem
from fiscalgate.gateway.db import MAX_OFFSET
from fiscalgate.gateway.errors import InvalidRequest

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PAGING_FIELDS = frozenset({"limit", "cursor", "offset"})
_VERSION = "1"

T = TypeVar("T")
R = TypeVar("R")


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int = Field(description="How many items match the filters, over all pages")
    next: str | None = Field(
        description="Opaque cursor of the next page (pass it as `cursor` with the same filters); "
        "null on the last page"
    )


class NoQuery(BaseModel):
    """A list that takes no query parameter (it is never long: one page, `next` always null)."""

    model_config = ConfigDict(extra="forbid")


class PageQuery(BaseModel):
    """The paging parameters every paginated list takes (filters subclass it)."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"1 to {MAX_LIMIT} per page")
    cursor: str | None = Field(
        default=None, max_length=400, description="The `next` of the previous page (opaque)"
    )
    offset: int | None = Field(
        default=None,
        ge=0,
        le=MAX_OFFSET,
        description="Deprecated: skip this many items (slow on deep pages); use `cursor`",
        json_schema_extra={"deprecated": True},
    )

    def fingerprint(self) -> str:
        """The filters (every field but the paging ones), hashed: a cursor is valid for them only."""
        filters = self.model_dump(mode="json", exclude=set(PAGING_FIELDS))
        text = json.dumps(filters, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Keyset:
    """The order of a list: its timestamp column, then its id (unique), both one direction."""

    created: InstrumentedAttribute[datetime]
    id: InstrumentedAttribute[str]
    newest_first: bool = True


def _encode(created: datetime, row_id: str, fingerprint: str) -> str:
    raw = json.dumps([_VERSION, created.isoformat(), row_id, fingerprint], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _bad_cursor(reason: str) -> InvalidRequest:
    return InvalidRequest(
        f"invalid request: cursor: {reason}",
        code="request.invalid",
        problems=[Problem("cursor", "invalid_cursor", reason)],
    )


def _decode(cursor: str, fingerprint: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        version, created, row_id, made_for = json.loads(base64.urlsafe_b64decode(padded.encode()))
        at = datetime.fromisoformat(created)
        if version != _VERSION or not isinstance(row_id, str) or at.tzinfo is None:
            raise ValueError(version)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise _bad_cursor("not a cursor of this list: pass the `next` of a page as it is") from None
    if made_for != fingerprint:
        raise _bad_cursor("this cursor belongs to the same list with other filters: keep the filters")
    return at, row_id


def paginate(
    session: Session,
    entity: type[R],
    conditions: Sequence[ColumnElement[bool]],
    query: PageQuery,
    order: Keyset,
) -> tuple[list[R], int, str | None]:
    """(rows of the page, total matching `conditions`, next cursor)."""
    if query.cursor is not None and query.offset is not None:
        raise InvalidRequest(
            "invalid request: offset: give `cursor` or the deprecated `offset`, not both",
            code="request.invalid",
            problems=[Problem("offset", "exclusive", "give `cursor` or the deprecated `offset`, not both")],
        )
    fingerprint = query.fingerprint()
    key = tuple_(order.created, order.id)
    stmt = select(entity).where(*conditions)
    if query.cursor is not None:
        at, row_id = _decode(query.cursor, fingerprint)
        # Bound with the columns' own types, so that SQLite compares its stored text form.
        after = tuple_(literal(at, order.created.type), literal(row_id, order.id.type))
        stmt = stmt.where(key < after if order.newest_first else key > after)
    if order.newest_first:
        stmt = stmt.order_by(order.created.desc(), order.id.desc())
    else:
        stmt = stmt.order_by(order.created, order.id)
    stmt = stmt.limit(query.limit + 1)
    if query.offset:
        stmt = stmt.offset(query.offset)
    rows = list(session.scalars(stmt))
    total = session.scalar(select(func.count()).select_from(entity).where(*conditions)) or 0
    following = None
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        last = rows[-1]
        following = _encode(getattr(last, order.created.key), getattr(last, order.id.key), fingerprint)
    return rows, total, following


def page_of(rows: list[R], total: int, following: str | None, out: Callable[[R], T]) -> Page[T]:
    return Page[T](items=[out(r) for r in rows], total=total, next=following)


def whole(items: list[T]) -> Page[T]:
    """A list that always fits one page."""
    return Page[T](items=items, total=len(items), next=None)
