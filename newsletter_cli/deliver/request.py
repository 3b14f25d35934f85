"""What the command line hands the send path: one frozen request and the tuning (the display hooks, which
speak of the plan and the progress, are in workers.py).

`cli.py` builds them (it is the only place that reads the command's flags and the NEWSLETTER_* knobs of the
environment); `plan(request, project)` and `send(plan, journal, hooks, tuning)` take them as they are, so the
same nine flags no longer travel through four layers, and a test passes a `Tuning` instead of test-only
parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter_cli.errors import InputError

if TYPE_CHECKING:
    from newsletter_cli.deliver.ratelimit import RateLimiter
    from newsletter_cli.deliver.smtp import Connection
    from newsletter_cli.settings import Settings

# Seconds between the tries of one member after a 4xx (greylisting), and the pauses before reconnecting after
# the connection or the account failed (0: at once), about 5 minutes in all.
RETRY_DELAYS: tuple[float, ...] = (5.0, 30.0, 120.0)
RECONNECT_DELAYS: tuple[float, ...] = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 60.0, 60.0, 60.0)


@dataclass(frozen=True)
class ReviewList:
    """A test send: to these addresses (--to), or, when there are none, to REVIEW_LIST."""

    to: tuple[str, ...] = ()


@dataclass(frozen=True)
class MemberList:
    """A real send (or its dry run): to the members in this list (a CSV, or a sheet of a workbook)."""

    path: Path
    sheet: str | None = None


@dataclass(frozen=True)
class SendRequest:
    """Everything the user asked of one `newsletter send`."""

    edition: str | None
    who: ReviewList | MemberList
    dry_run: bool = False
    limit: int | None = None
    resend_uncertain: bool = False  # also send to those whose reply was lost (they may get it twice)
    retry_failed: bool = False  # also send to those the server refused earlier
    ignore_check_errors: bool = False

    @property
    def test(self) -> bool:
        return isinstance(self.who, ReviewList)


@dataclass(frozen=True)
class Tuning:
    """How patient a send is, and what it paces itself with: the defaults are a real send's; the tests and
    the NEWSLETTER_RETRY_DELAYS / NEWSLETTER_RECONNECT_DELAYS / NEWSLETTER_STATE_DIR variables (read by
    `cli.py`) shorten or move them."""

    retry_delays: tuple[float, ...] = RETRY_DELAYS
    reconnect_delays: tuple[float, ...] = RECONNECT_DELAYS
    limiter: RateLimiter | None = None  # None: SEND_RATE for the account, shared with other processes
    state_dir: Path | None = None  # where that shared limiter keeps its times (None: the user's data folder)
    connect: Callable[[Settings], Connection] | None = None  # None: a real Connection


def parse_delays(name: str, raw: str, default: tuple[float, ...]) -> tuple[float, ...]:
    """A list of seconds as a user writes it (`0,0`; empty: `default`), for NEWSLETTER_RETRY_DELAYS and
    NEWSLETTER_RECONNECT_DELAYS."""
    raw = raw.strip()
    if not raw:
        return default
    try:
        return tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise InputError(f"{name} '{raw[:60]}' is not a list of seconds, e.g. 5,30,120") from None


REAL_TUNING = Tuning()  # a real send's delays and shared rate limiter
