"""A wide step's children, a page at a time (S11.1, S11.3): no payload grows with
the width of a step.

A step body may ask for tens of thousands of children. Their intents used to come
back in the step activity's one result — past Temporal's 256 KB warning at about
2,000 small ones, past its 2 MB limit at about 16,000 — and then rode every
hand-over of a step continuing as new. From `REVISION` 7 (`StepInput.page_children`)
the step's unit splits them into pages of at most `PAGE_INTENTS` intents and a
`PAGE_SHARE`th of the cluster's payload limit (`ServerLimits.payload_bytes`),
returns the first page and records the others in `stepped_step_records`, in the
step's own transaction, beside its outcome (store/records.py: a retry finds them
all or none). The workflow reads each next page through the local activity
`stepped_step_page` when it has started the page before (step_waiting.py).

Records are pruned after `worker.RECORDS_KEPT`; reading a page keeps the pages
after it alive that long again, and forgets the page before it (the workflow
has it in its history). A step's last page is left to the pruning.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from .config import settings
from .execution import json_in_thread
from .messages import ChildIntent, StepOutcome
from .store import records, transaction
from .unit_messages import PageInput, StepPage
from .wire import Json, encode

__all__ = ["PAGES_GONE", "PAGE_INTENTS", "PAGE_SHARE", "page_key", "paged", "read_page", "split"]

#: intents per page at most
PAGE_INTENTS = 500
#: a page's intents take at most this share of the cluster's payload limit
PAGE_SHARE = 16
#: the error type of a page that is no longer recorded
PAGES_GONE = "StepPagesGone"


def page_key(key: str, number: int) -> str:
    """The record key of page `number` of the step recorded under `key`."""
    return f"{key}/page/{number}"


def split(children: list[ChildIntent], join_after: list[list[int]] | None) -> list[StepPage]:
    """`children` in pages, in call order (at least one page)."""
    limit = max(1, settings().server_limits.payload_bytes // PAGE_SHARE)
    bounds: list[int] = [0]
    size = 0
    for number, intent in enumerate(children):
        bytes_ = len(json.dumps(encode(intent)))
        if number > bounds[-1] and (number - bounds[-1] >= PAGE_INTENTS or size + bytes_ > limit):
            bounds.append(number)
            size = 0
        size += bytes_
    bounds.append(len(children))
    return [
        StepPage(
            children=children[first:end],
            join_after=None
            if join_after is None
            else [[i - first for i in earlier] for earlier in join_after[first:end]],
        )
        for first, end in itertools.pairwise(bounds)
    ]


def paged(session: Session, key: str, action_id: str, outcome: StepOutcome) -> StepOutcome:
    """`outcome` as the workflow gets it: with more than a page of children, the
    first page and their count, the other pages recorded under `key` in the
    caller's transaction."""
    pages = split(outcome.children, outcome.join_after)
    if len(pages) <= 1:
        return outcome
    for number, page in enumerate(pages[1:], start=1):
        records.record(session, page_key(key, number), action_id, page)
    return replace(
        outcome,
        children=pages[0].children,
        join_after=pages[0].join_after,
        children_count=len(outcome.children),
        pages_key=key,
        page_count=len(pages),
    )


def _read(input: PageInput) -> StepPage:
    with transaction() as session:
        page = records.find(session, page_key(input.key, input.number), StepPage)
        if page is None:
            raise ApplicationError(
                f"page {input.number} of {input.count} of the children of step {input.key} is "
                f"no longer recorded (records are kept for worker.RECORDS_KEPT)",
                type=PAGES_GONE,
                non_retryable=True,
            )
        later = [page_key(input.key, n) for n in range(input.number + 1, input.count)]
        if later:  # still to be read: kept as long again
            records.keep(session, later)
        if input.number > 1:  # the page before is in the workflow's history now
            records.forget(session, page_key(input.key, input.number - 1))
    return page


@activity.defn(name="stepped_step_page")
async def read_page(input: Json) -> Json:
    """A page of a wide step's children (see the module's docstring)."""
    return await json_in_thread(PageInput, input, _read)
