"""`newsletter doctor`: tests the account end to end with the real send path (deliver/) and the real mailbox
(mailbox/), so it sits above both."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Check:
    """One line of `newsletter doctor`: tested and fine, a warning, or a failure."""

    ok: bool
    text: str
    warning: bool = False  # worth fixing; with ok=False it also makes the exit status non-zero (e.g. no DNS answer)
