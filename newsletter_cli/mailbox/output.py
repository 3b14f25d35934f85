"""What `newsletter mailbox` prints (cli.py echoes these lines): each action, the refusals of our sending grouped
per receiving domain, each message for a person, and a one-line summary."""

from __future__ import annotations

from newsletter_cli.mailbox.judge import Action
from newsletter_cli.mailbox.run import Result
from newsletter_cli.members import suppressions
from newsletter_cli.words import count

WHAT = {"unsubscribed": "unsubscribed", "permanent": "bounced (dead)", "temporary": "bounced (soft)",
        "complaint": "spam complaint"}


def summary_line(result: Result) -> str:
    """'1 unsubscribe, 4 bounces: 3 dead, 1 soft; 0 complaints; 2 refused our sending; 5 messages for you to
    read'."""
    n = {kind: sum(1 for a in result.actions if a.kind == kind) for kind in
         ("unsubscribed", "permanent", "temporary", "complaint", "refused")}
    return (f"{count(n['unsubscribed'], 'unsubscribe', 'unsubscribes')}, "
            f"{count(n['permanent'] + n['temporary'], 'bounce', 'bounces')}: {n['permanent']} dead, "
            f"{n['temporary']} soft; {count(n['complaint'], 'complaint', 'complaints')}; "
            f"{n['refused']} refused our sending; "
            f"{count(len(result.for_you), 'message', 'messages')} for you to read")


def refused_lines(actions: list[Action]) -> list[str]:
    """The refusals of our sending, per receiving domain: 'gemeente-x.nl refused 14 messages: DMARC: run
    `newsletter doctor`.' Nobody is suppressed for these: the members' addresses are fine."""
    by_domain: dict[str, list[Action]] = {}
    for action in actions:
        if action.kind == "refused":
            by_domain.setdefault(action.email.rpartition("@")[2].lower(), []).append(action)
    if not by_domain:
        return []
    lines = ["Refused our sending (the members' addresses are fine, nobody was suppressed; fix the cause and "
             "these members get the next edition):"]
    for domain, refused in sorted(by_domain.items(), key=lambda item: (-len(item[1]), item[0])):
        why: dict[str, list[str]] = {}
        for action in refused:
            why.setdefault(action.explanation.rstrip("."), []).append(action.email)
        head = f"  {domain} refused {count(len(refused), 'message', 'messages')}"
        if len(why) == 1:
            (reason, _), = why.items()
            lines.append(f"{head}: {reason}.")
            continue
        lines.append(f"{head}:")
        for reason, members in sorted(why.items(), key=lambda item: -len(item[1])):
            lines.append(f"    {len(members)} x {reason}.")
    return lines


def report_lines(result: Result) -> list[str]:
    """What `newsletter mailbox` prints."""
    verb = "would suppress" if result.dry_run else "suppressed"
    new = {s.key for s in result.suppressed}
    lines = []
    for a in result.actions:
        if a.kind == "refused":
            continue
        key = suppressions.Suppression(a.email, "").key
        after = verb if key in new else ("counted" if a.kind == "temporary" else "already on the suppression list")
        lines.append(f"  {WHAT[a.kind]:<16} {a.email} ({a.edition or 'no edition'})"
                     f"{': ' + a.detail if a.detail else ''} -> {after}")
    lines += refused_lines(result.actions)
    if result.for_you:
        lines.append(f"For you to read (listed once; left in {result.folder} unless said otherwise):")
        lines += [f"  {f.sender or '(no sender)'}: \"{f.subject}\": {f.why}" for f in result.for_you]
    if result.listed_before:
        lines.append(f"  {result.listed_before} message(s) listed on an earlier run are still in {result.folder}")
    if result.filed:
        lines.append(f"  {len(result.filed)} auto-reply/delay/delivery/read report(s) "
                     f"{'would be filed' if result.dry_run else 'filed'}: nothing to do")
    if result.left_alone:
        lines.append(f"  {result.left_alone} other message(s) (ordinary mail) left alone in {result.folder}")
    unreadable = sum(1 for f in result.for_you if f.unreadable)
    if result.dry_run:
        lines.append(f"Dry run: nothing was changed; {len(result.actions) + len(result.filed)} message(s) would be "
                     f"moved to '{result.processed_folder}'"
                     + (f", {unreadable} to '{result.unreadable_folder}'" if unreadable else "")
                     + f", and {len(result.suppressed)} address(es) added to {suppressions.FILE}.")
    else:
        created = f" (created: {', '.join(result.created_folders)})" if result.created_folders else ""
        lines.append(f"{len(result.suppressed)} address(es) added to {suppressions.FILE}; "
                     f"{result.moved} message(s) moved to '{result.processed_folder}'"
                     + (f" and '{result.unreadable_folder}'" if unreadable else "") + f"{created}.")
    lines.append(summary_line(result))
    return lines
