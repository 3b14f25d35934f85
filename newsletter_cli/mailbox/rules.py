"""The rule table: what one failed recipient's status, reply code and diagnostic text mean for the member.

Work in progress (issue 18): the table is filled in from the corpus in tests/test_classify_corpus.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    """What a failed recipient means for the member."""

    DEAD = "dead"  # the address does not exist: suppress
    REFUSED = "refused"  # our sending or our message was refused: never suppress, tell the secretariat
    SOFT = "soft"  # temporary, mailbox full, the recipient's own filter: counted as a soft bounce
    UNKNOWN = "unknown"  # cannot tell: list it for a person, never suppress on it


@dataclass(frozen=True)
class Rule:
    reason: str
    verdict: Verdict
    text: re.Pattern[str] | None
    statuses: tuple[str, ...]
    explanation: str


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


RULES: tuple[Rule, ...] = (
    Rule("dmarc", Verdict.REFUSED, _re(r"dmarc"), (), "DMARC: run `newsletter doctor`."),
    Rule("blocklist", Verdict.REFUSED, _re(r"spamhaus|blacklist|blocklist|block list"), (),
         "our sending IP is on a blocklist."),
    Rule("mailbox-full", Verdict.SOFT, _re(r"mailbox (is )?full|over ?quota"), ("5.2.2", "4.2.2"),
         "the member's mailbox is full."),
    Rule("user-unknown", Verdict.DEAD, _re(r"user unknown|unknown user|no such user"), ("5.1.1", "5.1.10"),
         "the address does not exist."),
)


def judge(status: str, reply_code: str, diagnostic: str) -> Rule | None:
    """The first rule that matches, or None."""
    for rule in RULES:
        if rule.text is not None and rule.text.search(diagnostic):
            return rule
        if status and status in rule.statuses:
            return rule
    return None
