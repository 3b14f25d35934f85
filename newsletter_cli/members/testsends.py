"""Which builds of an edition were test-sent, when and to whom (`test-sends.json` in the edition's folder).

A real send warns about a build nobody was sent as a test: the edition changed since the last test, or there
was none. A test to reserved example names only (example.org, .test, ...) reached nobody and does not count.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from newsletter_cli.members.journal import now

TEST_SENDS_FILE = "test-sends.json"  # which builds were test-sent, per edition
# Names that never belong to a person's mailbox (RFC 2606, RFC 6761; .local is mDNS, RFC 6762; home.arpa,
# RFC 8375): a test to them was read by nobody, so it never counts as the edition's test.
RESERVED_DOMAINS = ("example.com", "example.net", "example.org", "home.arpa")
RESERVED_TLDS = ("example", "test", "invalid", "localhost", "local")


@dataclass(frozen=True)
class TestSend:
    """One build's test send: when (journal.now's format) and to whom."""

    __test__ = False  # not a pytest test class

    time: str
    to: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"time": self.time, "to": list(self.to)}


def reserved(address: str) -> bool:
    """Whether an address is at a reserved example or test name (example.org, x.test, localhost, ...)."""
    domain = address.rpartition("@")[2].strip().rstrip(".").lower()
    return (domain.rsplit(".", 1)[-1] in RESERVED_TLDS
            or any(domain == d or domain.endswith(f".{d}") for d in RESERVED_DOMAINS))


def tested_builds(folder: Path) -> dict[str, TestSend]:
    """Build fingerprint -> when and to whom it was test-sent (nothing when the file is missing or unreadable)."""
    path = folder / TEST_SENDS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    found: dict[str, TestSend] = {}
    for fp, entry in data.items():
        if isinstance(entry, dict):
            to = entry.get("to", [])
            found[str(fp)] = TestSend(str(entry.get("time", "")),
                                      tuple(str(a) for a in to) if isinstance(to, list) else ())
    return found


def remember_tested_build(folder: Path, fp: str, addresses: Sequence[str]) -> None:
    data = {key: entry.to_json() for key, entry in tested_builds(folder).items()}
    data[fp] = TestSend(now(), tuple(addresses)).to_json()
    tmp = folder / f".{TEST_SENDS_FILE}.tmp"
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    tmp.replace(folder / TEST_SENDS_FILE)


def when_tested(folder: Path, fp: str) -> str | None:
    """When build `fp` was test-sent to someone who reads it, or None."""
    sent = tested_builds(folder).get(fp)
    if sent and all(reserved(address) for address in sent.to):
        return None  # recorded before 0.2.0, which counted a test to example.org addresses
    return sent.time if sent else None


def never_tested(fp: str, *, short: bool = False) -> str:
    """The one warning about a build that was never test-sent: in full for the plan's warnings, `short` for
    the summary's Build line (which the handbook quotes)."""
    if short:
        return (f"{fp}: WARNING: THIS BUILD WAS NEVER TEST-SENT. Run `newsletter send EDITION --test` first and "
                "check it.")
    return (f"THIS BUILD ({fp}) WAS NEVER TEST-SENT: the edition changed since the last test send, or there was "
            "none (a test to example addresses only does not count). Run `newsletter send EDITION --test` and "
            "check it.")
