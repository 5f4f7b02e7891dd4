"""Calendar events (regular gatherings): a recurrence rule in the tenant's time zone, its
occurrences with their seats, RSVPs with a waitlist, and attendance by code (`/events` stays
the business event feed)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import Field

from shequn.community.gatherings import service as gatherings
from shequn.entrypoints.api.community_models import Timestamp
from shequn.entrypoints.api.http import API_PREFIX, Body, Reader, Writer, blocking
from shequn.entrypoints.api.shapes import Shape
from shequn.errors import InvalidInput
from shequn.flows import community_rewards

router = APIRouter(prefix=API_PREFIX, tags=["gatherings"])

EventId = Annotated[str, Path(description="The calendar event (`cal_…`); unknown: 404.")]
MEMBER_TEXT = "The member (`mem_…`); unknown: 404 `member_not_found`."


class CalendarEventCreate(Body):
    title: str = Field(max_length=120, description="What the gathering is called (1 to 120).")
    kind: Literal["class", "meetup", "festival", "lab", "live"] = Field(
        description="The kind of gathering."
    )
    rrule: str = Field(
        max_length=500,
        description="An RFC 5545 RRULE of days, weeks, months or years, read in the tenant's "
        "time zone (e.g. `FREQ=WEEKLY;BYDAY=TU,TH` for the Tue/Thu classes): FREQ, INTERVAL, "
        "COUNT, UNTIL (local time, no `Z`), BYDAY, BYMONTHDAY, BYMONTH, BYHOUR, BYMINUTE, "
        "WKST; no DTSTART; it must occur within two years of `starts_at`. Else 422 "
        "`rrule_invalid`.",
    )
    starts_at: Timestamp = Field(
        description="The first occurrence; its local wall time (e.g. 20:00) is kept by every "
        "occurrence, across daylight-saving changes."
    )
    duration_minutes: int = Field(default=60, ge=1, le=1440, description="Length, minutes.")
    capacity: int | None = Field(
        default=None, ge=1, le=100_000, description="Seats per occurrence; absent: no limit."
    )
    points: int = Field(
        default=0, ge=0, le=100_000, description="Points earned (once) for attending."
    )
    remind_minutes: int = Field(
        default=60, ge=0, le=10_080, description="How long before an occurrence to remind."
    )
    community_id: str | None = Field(
        default=None, max_length=40, description="The community it is for (`cmty_…`)."
    )
    group_id: str | None = Field(
        default=None, max_length=40, description="The group it is held in (`grp_…`)."
    )
    lecturer_id: str | None = Field(
        default=None, max_length=40, description="The member who gives it (the roster)."
    )
    staff_account_id: str | None = Field(
        default=None,
        max_length=40,
        description="The staff account that sends its reminders and follow-ups.",
    )


class CalendarEventOut(Shape):
    id: str
    community_id: str | None
    group_id: str | None
    kind: str
    title: str
    rrule: str
    starts_at: datetime
    time_zone: str
    duration_minutes: int
    capacity: int | None
    points: int
    remind_minutes: int
    attendance_code: str
    lecturer_id: str | None
    staff_account_id: str | None
    created_at: datetime


class OccurrenceOut(Shape):
    starts_at: datetime
    ends_at: datetime
    confirmed: int
    waitlisted: int
    seats_left: int | None
    attended: int


class OccurrencesOut(Shape):
    event_id: str
    time_zone: str
    items: list[OccurrenceOut]


class RsvpIn(Body):
    member_id: str = Field(max_length=40, description=MEMBER_TEXT)
    occurrence_at: Timestamp = Field(
        description="The occurrence's start, as the occurrences list gives it; not one of "
        "the rule's: 422 `occurrence_unknown`; ended: 409 `occurrence_past`."
    )
    cancel: bool = Field(
        default=False,
        description="Give the seat (or the waitlist place) back: the first waiting member "
        "takes a freed seat.",
    )


class RsvpOut(Shape):
    event_id: str
    occurrence_at: datetime
    member_id: str
    status: Literal["confirmed", "waitlisted", "cancelled"]
    waitlist_position: int | None
    promoted: list[str]


class AttendanceIn(Body):
    member_id: str = Field(max_length=40, description=MEMBER_TEXT)
    code: str | None = Field(
        default=None,
        max_length=12,
        description="The event's attendance code, for the occurrence open now (from 30 "
        "minutes before its start to an hour after its end); wrong: 422.",
    )
    occurrence_at: Timestamp | None = Field(
        default=None,
        description="Staff recording attendance of a named occurrence instead of a code.",
    )


class AttendanceOut(Shape):
    event_id: str
    occurrence_at: datetime
    member_id: str
    via: str
    attended_at: datetime
    replayed: bool
    points_earned: int


@router.post(
    "/calendar-events", status_code=status.HTTP_201_CREATED, response_model=CalendarEventOut
)
@blocking
def create_calendar_event(ctx: Writer, body: CalendarEventCreate) -> dict[str, Any]:
    """Create a recurring calendar event

    Its occurrences follow the RRULE in the tenant's time zone; the answer carries its
    attendance code."""
    return gatherings.create_event(ctx, **body.model_dump())


@router.get("/calendar-events/{event_id}/occurrences", response_model=OccurrencesOut)
@blocking
def calendar_event_occurrences(
    ctx: Reader,
    event_id: EventId,
    start: Annotated[
        Timestamp, Query(alias="from", description="From this time (with its offset).")
    ],
    end: Annotated[
        Timestamp,
        Query(alias="to", description="Until this time, excluded; at most 366 days after."),
    ],
) -> dict[str, Any]:
    """List an event's occurrences in a range

    Each with its seats taken, waitlist and attendance."""
    return gatherings.event_occurrences(ctx, event_id=event_id, start=start, end=end)


@router.post(
    "/calendar-events/{event_id}/rsvps", status_code=status.HTTP_201_CREATED, response_model=RsvpOut
)
@blocking
def rsvp_calendar_event(
    ctx: Writer, event_id: EventId, body: RsvpIn, response: Response
) -> dict[str, Any]:
    """Ask for a seat at an occurrence, or give it back

    A seat while one is free, else the waitlist; asking again answers 200 unchanged."""
    answer, replayed = gatherings.rsvp(
        ctx,
        event_id=event_id,
        member_id=body.member_id,
        occurrence_at=body.occurrence_at,
        cancel=body.cancel,
    )
    if replayed or body.cancel:
        response.status_code = status.HTTP_200_OK
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return answer


@router.post(
    "/calendar-events/{event_id}/attendance",
    status_code=status.HTTP_201_CREATED,
    response_model=AttendanceOut,
)
@blocking
def record_calendar_attendance(
    ctx: Writer, event_id: EventId, body: AttendanceIn, response: Response
) -> dict[str, Any]:
    """Record attendance by code or by staff

    The event's points are earned once; recording it again answers 200 unchanged."""
    if body.code is None and body.occurrence_at is None:
        raise InvalidInput("attendance_code_wrong")
    answer = community_rewards.record_attendance(
        ctx,
        event_id=event_id,
        member_id=body.member_id,
        code=body.code if body.occurrence_at is None else None,
        occurrence_at=body.occurrence_at,
    )
    if answer["replayed"]:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return answer
