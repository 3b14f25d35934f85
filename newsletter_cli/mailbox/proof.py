"""Whether a report proves itself: it names a message we sent, and the address that failed is the one we sent
that message to.

Message-IDs are random per member and edition (deliver/message.py), so knowing one means having seen that
member's copy. A report counts only when one of its Message-IDs is in a send journal AND its failed recipient
(Final-Recipient, Original-Recipient, or the address in the text of a report without a DSN) is the address
the journal recorded for it. A stranger's report naming another address, made-up Message-IDs, backscatter of
mail we never sent, or a bounce from a member's old forwarding address prove nothing: they are listed for a
person, never acted on.
"""

from __future__ import annotations

from dataclasses import dataclass

from newsletter_cli.mailbox.classify import Failure, Report
from newsletter_cli.mailbox.mailtext import decoded
from newsletter_cli.mailbox.record import Sent
from newsletter_cli.members.lists import normal_address


@dataclass(frozen=True)
class Proven:
    """A report tied to one member's message: which edition, which member, and the failure that names them."""

    edition: str
    member: str
    failure: Failure | None  # None for a complaint (it names no failure)


def names(failure: Failure, member: str) -> bool:
    """Whether the failure is about the member's address (any spelling: case, punycode or Unicode domain, an
    RFC 2047 encoded word as some mail programs write a non-ASCII local part; a report's fields arrive decoded)."""
    wanted = {normal_address(member), normal_address(decoded(member))}
    return any(a and normal_address(decoded(a)) in wanted for a in (failure.address, failure.original_recipient))


def _ids(report: Report) -> str:
    return ", ".join(report.message_ids[:3]) or "none"


def prove_bounce(report: Report, sent: Sent) -> Proven | str:
    """The member's failure in a bounce, or why the bounce proves nothing (for the person who reads the list)."""
    named = ", ".join(dict.fromkeys(f.address or f.original_recipient for f in report.failures)) or "no address"
    match = sent.match(report.message_ids)
    if match is None and (old := sent.match_guessable(report.message_ids)):
        return (f"a bounce for {named} about {old[1]}'s message of {old[0]}, sent with a Message-ID of the old, "
                f"guessable kind: not acted on; if the address is dead, run newsletter suppress {old[1]}")
    if match is None:
        return (f"a bounce for {named} about a message the send journals do not know (Message-ID {_ids(report)}): "
                "not acted on")
    edition, member = match
    failure = next((f for f in report.failures if names(f, member)), None)
    if failure is None:
        return (f"a bounce naming {named}, but that message ({edition}) was sent to {member}: not acted on (a "
                "forwarding address, or a forged report)")
    return Proven(edition, member, failure)


def prove_complaint(report: Report, sent: Sent) -> Proven | str:
    """The member a spam complaint is about, or why it proves nothing. Feedback reports often hide the
    recipient; then the member's own random Message-ID is the proof. A recipient that is named must match."""
    match = sent.match(report.message_ids)
    if match is None and (old := sent.match_guessable(report.message_ids)):
        return (f"a spam complaint about {old[1]}'s message of {old[0]}, sent with a Message-ID of the old, "
                f"guessable kind: not acted on; check it, then newsletter suppress {old[1]} --reason complaint")
    if match is None:
        return (f"a spam complaint about a message the send journals do not know (Message-ID {_ids(report)}): "
                "not acted on")
    edition, member = match
    about = report.complained_about
    if about and "@" in about and normal_address(about) != normal_address(member):
        return (f"a spam complaint naming {about}, but that message ({edition}) was sent to {member}: not acted on")
    return Proven(edition, member, None)
