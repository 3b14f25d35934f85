"""The rule table: what one failed recipient's report means for the member, decided by what failed, not by the
first digit of the code.

Four verdicts (`Verdict`):

- **dead**: the address does not exist (any more): the member is suppressed.
- **refused**: the receiving server refused *our* sending or *our* message (DMARC/SPF/DKIM, our IP on a
  blocklist, spam filter, policy, size, relaying, TLS, reverse DNS, ...). The member's address is fine: never
  suppressed; the secretariat gets it as news, grouped per receiving domain, with what to check.
- **soft**: temporary or on the member's side (mailbox full, account disabled, the recipient's own filter,
  timeouts, DNS or system trouble, rate limits): counted as a soft bounce.
- **unknown**: the report does not say clearly: listed for a person, never suppressed.

How a failure is judged (`judge`), in this order; the first rule that matches decides:

1. The wording of the diagnostic, `WORDINGS` below, top to bottom (then the rest of the report's words, for a
   report about one recipient). Wordings that blame the sender or the message come first, then the temporary
   and mailbox-side ones, and only then the wordings of a dead address, so that "550 5.1.1 ... listed at
   Spamhaus" is a blocklist and not an unknown user. Exchange Online's "5.4.1 Recipient address rejected:
   Access denied" (directory-based edge blocking) is dead; the same words with another code are unknown.
   The recipient's own filter is judged on the words too, never by provider: a report that speaks of a (domain)
   filter or a refusal by the recipient is soft; one that only says "Unknown user" reads as a dead address,
   even where (NTT docomo, au) the carrier answers so to its user's filter.
2. The enhanced status code (RFC 3463, `STATUSES`): 5.1.1 bad mailbox, 5.1.2 bad domain, 5.1.6 moved and
   5.1.10 null MX are dead (other X.1.x, such as 5.1.3 bad syntax, are unknown); X.1.7/X.1.8 (our sender
   address), X.5.x (protocol), X.6.x (content) and X.7.x (policy, security) are refused; X.2.x (mailbox),
   X.3.x (mail system) and X.4.x (network, routing) are soft, except 5.3.4 (message too big: refused).
3. The SMTP reply code alone: 4xx is soft, anything else unknown.

Then three safeguards, because a wrong "dead" loses a member:

- a temporary failure (status 4.x.x or reply 4xx) is never dead: it is soft;
- a refusal at the end of DATA is never dead: the server accepted the address and then refused the message,
  which is a filter (Japanese carriers answer "550 Unknown user" to mail their user's filter refuses);
- a refusal of MAIL FROM or of the connection is never dead: no recipient had been named yet.

The reasons (`Failure.reason`, stable names; `REASONS` below has the plain-English explanation of each):

- dead: user-unknown, no-such-domain, no-mail-domain, has-moved;
- refused: dmarc, spf, dkim, authentication, auth-required, blocklist, reputation, reverse-dns, sender-address,
  spam, virus, policy, access-denied, relaying, tls, message-too-big, not-compliant, protocol, group-permission;
- soft: mailbox-full, account-disabled, recipient-filter, too-big-for-recipient, rate-limited, expired, network,
  system, temporary;
- unknown: unknown, and (from classify.py) contradictory: a report whose code and text disagree.

tests/test_classify_corpus.py checks this table against 465 real reports with Sisimai's verdicts, and
tests/test_classify.py the cases issue 18 names.
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


D, R, S, U = Verdict.DEAD, Verdict.REFUSED, Verdict.SOFT, Verdict.UNKNOWN
ASK_PROVIDER = "if it lasts, ask whoever runs your mail (Microsoft 365, your provider)."

# reason: (verdict, plain English for the secretariat: what it means and what to check)
REASONS: dict[str, tuple[Verdict, str]] = {
    # the address is dead
    "user-unknown": (D, "the address does not exist at the receiving domain."),
    "no-such-domain": (D, "the address's domain does not exist."),
    "no-mail-domain": (D, "the address's domain does not receive mail."),
    "has-moved": (D, "the address is no longer in use (the mailbox has moved)."),
    # our sending or our message was refused
    "dmarc": (R, "refused because our mail failed the receiver's DMARC check for our From domain: "
                 "run `newsletter doctor`."),
    "spf": (R, "refused because our sending server is not in our domain's SPF record: run `newsletter doctor`."),
    "dkim": (R, "refused because our DKIM signature is missing or wrong: run `newsletter doctor`."),
    "authentication": (R, "refused because our mail failed the receiver's authentication checks (SPF, DKIM, "
                          "DMARC): run `newsletter doctor`."),
    "auth-required": (R, "the receiving server only takes mail from logged-in senders: check SMTP_HOST in .env "
                         "(it must be your own provider's server)."),
    "blocklist": (R, "our sending server's IP address or domain is on a blocklist the receiver uses. With a "
                     "shared sender (Microsoft 365) this often clears within a day; " + ASK_PROVIDER),
    "reputation": (R, "the receiver throttles or refuses our sending server for its reputation or volume: "
                      "send more slowly or later; " + ASK_PROVIDER),
    "reverse-dns": (R, "our sending server has no matching reverse DNS name (PTR) or an unknown HELO name: "
                       + ASK_PROVIDER),
    "sender-address": (R, "the receiver refused our sender address or its domain: check NEWSLETTER_FROM and "
                          "run `newsletter doctor`."),
    "spam": (R, "the receiver's spam filter refused the edition: look at its content (links, images, wording) "
                "and ask the receiving organisation to accept our sender address."),
    "virus": (R, "the receiver's virus or attachment filter refused the edition: check its attachments and "
                 "links."),
    "policy": (R, "the receiving server refused our message under its own policy: ask the receiving "
                  "organisation's IT to accept our sender address."),
    "access-denied": (R, "the receiving server denied our server access: ask the receiving organisation's IT "
                         "to accept our sender address; " + ASK_PROVIDER),
    "relaying": (R, "the receiving server does not accept mail for this domain from us (relaying denied): check "
                    "the address's domain, and SMTP_HOST in .env."),
    "tls": (R, "the receiver requires an encrypted (TLS) connection our server did not offer: " + ASK_PROVIDER),
    "message-too-big": (R, "the edition is too big for the receiving server: make it smaller (fewer or smaller "
                           "images, no attachments)."),
    "not-compliant": (R, "the receiver refused the message's form (headers not as the standard wants): "
                         "run `newsletter check`; report it if it repeats."),
    "protocol": (R, "the receiving server refused a step of our sending (SMTP protocol): " + ASK_PROVIDER),
    "group-permission": (R, "the address is a group (mailing list) that does not take mail from us: ask its "
                            "owner to allow our sender address, or remove the address."),
    # temporary or on the member's side: soft
    "mailbox-full": (S, "the member's mailbox is full."),
    "account-disabled": (S, "the member's account is disabled or frozen (it may come back)."),
    "recipient-filter": (S, "the member's own filter or the receiver's rules for this member refused it "
                            "(the address itself was accepted)."),
    "too-big-for-recipient": (S, "the edition is bigger than this member's mailbox accepts."),
    "rate-limited": (S, "the receiver took too many messages from us at once: it will work another time."),
    "expired": (S, "the message could not be delivered in time (the receiving server did not answer)."),
    "network": (S, "a network or DNS problem on the way to the receiving server."),
    "system": (S, "a problem in the receiving mail system."),
    "temporary": (S, "a temporary failure."),
    "unknown": (U, "the report does not say clearly what failed: look at it yourself."),
}

# The wording of the diagnostic: (reason, pattern), the first match wins. Sender and message first, then the
# temporary and member-side wordings, then a dead address.
WORDINGS: tuple[tuple[str, str], ...] = (
    ("unknown", r"may not exist, they may be blacklisted"),  # Exim's guess at any of three: says nothing
    ("dmarc", r"dmarc"),
    ("spf", r"\bspf\b|sender policy framework"),
    ("dkim", r"\bdkim\b|domainkeys"),
    ("authentication", r"authentication (checks|information)|unauthenticated e-?mail|multiple authentication"),
    ("auth-required", r"unauthenticated senders|smtp authentication|authentication required|must authenticate"),
    ("rate-limited", r"too many (recipients|connections|messages)|frequency limited|rate.?limit(?!ed due to ip rep)|"
                     r"sent to too many|try again later|please try later"),
    ("reputation", r"reputation|unexpected volume|user complaints|\[TSS\d+\]"),
    ("blocklist", r"spamhaus|spamcop|barracudacentral|\bsorbs\b|uribl|surbl|dnsbl|\brbl\b|black.?list|"
                  r"block.?list|blocked using|banned sending ip|(?<!not )listed (at|in|on)\b|\(BL\)|blocked - see"),
    ("reverse-dns", r"reverse dns|\brdns\b|\bptr\b|ip name lookup failed|mismatches client ip|"
                    r"may not be mail exchanger|without a valid sender domain|unverifi?(able|yable) sending ip|"
                    r"my name was rejected|invalid domain name"),
    ("sender-address", r"sender address rejected|domain of sender address|sender (was )?rejected|unroutable sender|"
                       r"sender domain|mail ?from domain|from: domain|invalid ip for sending|sending domain|"
                       r"address that has been blacklisted"),
    ("relaying", r"relay(ing)? (access )?(denied|not permitted|not allowed)|not permitted to relay|"
                 r"insecure mail relay|open relay|unable to relay"),
    ("tls", r"starttls|\btls\b (is )?required|encryption required|must use tls"),
    ("virus", r"virus|malware|illegal attachment|potential security issue|dangerous attachment"),
    ("spam", r"spam|\bube\b|content rejected|message content|suspicious|mail rejete|bulk mail"),
    ("not-compliant", r"rfc ?5322|rfc ?2822|multiple addresses in from|8-bit data in message header|"
                      r"headers? too (large|long)|multiple \w+ headers"),
    ("too-big-for-recipient", r"limit set by recipient|recipsizelimit|too large for this recipient"),
    ("message-too-big", r"message (size|length) exceeds|size exceeds|too (large|big)|size limit"),
    ("group-permission", r"group you tried to contact|permission to post|to group .* was rejected"),
    ("policy", r"polic(y|ies)|protocol violation|message not allowed|host network not allowed|"
               r"delivery not authorized|not authorized"),
    ("mailbox-full", r"mailbox (is )?full|mailbox full|over ?quota|quota exceeded|exceeds allowed size|"
                     r"folder is full|out of storage|storage quota|messages in recipient's mailbox exceeded|"
                     r"too much mail data|disk space|mailbox size limit"),
    ("account-disabled", r"account (that you tried to reach )?is (disabled|inactive)|account (has been )?disabled|"
                         r"(is|been) (disabled|discontinued)|mailbox is frozen|account is blocked|"
                         r"disabled recipient|account disabl"),
    ("recipient-filter", r"message filtered|recipient preferences|badrcptto|domain.?filter|"
                         r"rejected by (the )?recipient(?! domain)|recipient'?s? (own )?filter"),
    ("expired", r"timed? ?out|expired|retry time|could not deliver for the last|queue too long|"
                r"failing for a long time|will be retried|has been delayed|not delivered within|"
                r"could not be delivered for|still undelivered|unable to deliver .* after"),
    ("no-such-domain", r"the domain is not reachable"),  # Outlook.com: no such domain
    ("network", r"connection refused|host not reachable|network error|too many hops|name server reply|"
                r"could not find a gateway|unable to connect|refused to talk|did not accept our requests"),
    ("system", r"internal (system|server) error|operating system error|mailer error|lock failure|"
               r"couldn't create|ldap|transaction failed|insufficient permission|"
               r"upstream error|on hold|recipient error\. please try again|could not load|service refuse"),
    ("has-moved", r"no longer on (this )?server|not our customer|mailbox has moved|destination mailbox .*moved"),
    ("no-mail-domain", r"does not accept mail|doesn't receive email|no mx (record )?found|"
                       r"couldn't find a mail exchanger|null mx"),
    ("no-such-domain", r"host unknown|unknown host|domain does not exist|domain name not found|host not found|"
                       r"domain (is )?not reachable|dns lookup failure|bad destination (system|host)"),
    ("user-unknown", r"user ?unknown|unknown (user|recipient|address)|no such (user|mailbox|recipient|address)|"
                     r"recip(ient)?notfound|recipient not found|user not (found|exist)|"
                     r"address (couldn't|could not) be found|not listed in (the )?(domino directory|public name)|"
                     r"invalid (final delivery userid|recipient|address)|no mailbox here|mailbox does not exist|"
                     r"doesn't have an? [\w.-]+ account|does not exist|account .*does not exist|"
                     r"inactive e-?mail address|illegal alias|no valid recipients for this|"
                     r"check if address is correct|unable to deliver message to <|destinataire invalide|"
                     r"unknown or illegal|recipient address rejected: user|address rejected|"
                     r"requested action not taken: (no such user|mailbox unavailable)|"
                     r"recipient name is not recognized|"  # and Domino/Notes in Japanese: not in the directory
                     r"ディレクトリ(には見つかりません|のリストにありません)"),
    ("access-denied", r"access denied|access forbidden|forbidden"),
)

# The enhanced status code when no wording decided (RFC 3463): (reason, pattern on 'C.S.D').
STATUSES: tuple[tuple[str, str], ...] = (
    ("user-unknown", r"5\.1\.1"),
    ("no-such-domain", r"5\.1\.2"),
    ("has-moved", r"5\.1\.6"),
    ("no-mail-domain", r"5\.1\.10"),
    ("sender-address", r"\d\.1\.[78]|\d\.7\.27"),
    ("account-disabled", r"\d\.2\.1|\d\.7\.13"),
    ("mailbox-full", r"\d\.2\.2"),
    ("too-big-for-recipient", r"\d\.2\.3"),
    ("message-too-big", r"\d\.3\.4"),
    ("system", r"\d\.[23]\.\d+"),
    ("expired", r"\d\.4\.7"),
    ("network", r"\d\.4\.\d+"),
    ("protocol", r"\d\.5\.\d+"),
    ("not-compliant", r"\d\.6\.\d+"),
    ("authentication", r"\d\.7\.(2[0-4]|26)"),
    ("reverse-dns", r"\d\.7\.25"),
    ("tls", r"\d\.7\.1[01]"),
    ("policy", r"\d\.7\.\d+"),
)

_WORDINGS = tuple((reason, re.compile(pattern, re.IGNORECASE)) for reason, pattern in WORDINGS)
_STATUSES = tuple((reason, re.compile(rf"(?:{pattern})$")) for reason, pattern in STATUSES)
_AFTER_DATA = re.compile(r"end of data|final data|\(data\b|after data|reply to data", re.IGNORECASE)
_BEFORE_RECIPIENT = re.compile(r"mail from (command|:)|after mail ?from|initial connection|refused to talk to me|"
                               r"reply to (helo|ehlo)|connected to .* but sender was rejected", re.IGNORECASE)
_EXCHANGE_EDGE_BLOCK = re.compile(r"recipient address rejected: access denied", re.IGNORECASE)


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str
    explanation: str


def _of(reason: str, verdict: Verdict | None = None, note: str = "") -> Judgement:
    default, explanation = REASONS[reason]
    return Judgement(verdict or default, reason, explanation + note)


def judge(status: str, reply_code: str, diagnostic: str, report: str = "") -> Judgement:
    """The verdict on one failed recipient from its enhanced status ('5.1.1' or ''), its reply code ('550' or ''),
    its diagnostic text and, when the diagnostic has no known wording, the rest of the report's words (`report`,
    given only for a report about one recipient)."""
    reason = _reason(status, reply_code, diagnostic, report)
    verdict = REASONS[reason][0]
    if verdict is not Verdict.DEAD:
        return _of(reason)
    if status.startswith("4") or reply_code.startswith("4"):
        return _of(reason, Verdict.SOFT, " The server called it temporary, so it counts as a soft bounce.")
    if _BEFORE_RECIPIENT.search(diagnostic):
        return _of("unknown", note=" (it was refused before any recipient was named)")
    if _AFTER_DATA.search(diagnostic):
        return _of("recipient-filter", note=" It was refused only after the server had seen the message.")
    return _of(reason)


def wording(text: str) -> Judgement | None:
    """What the words alone say, or None when no wording of the table is in them."""
    for reason, pattern in _WORDINGS:
        if pattern.search(text):
            return _of(reason)
    return None


CONTRADICTING = ("dmarc", "spf", "dkim", "authentication", "blocklist", "reputation", "spam", "virus", "relaying",
                 "message-too-big", "too-big-for-recipient", "mailbox-full", "account-disabled")


def contradicting_wording(text: str) -> Judgement | None:
    """The first clear wording in a report's text that puts the blame elsewhere than on a dead address (a full
    mailbox, a disabled account, our sending): a report that also says 'user unknown' contradicts itself."""
    for reason, pattern in _WORDINGS:
        if reason in CONTRADICTING and pattern.search(text):
            return _of(reason)
    return None


def _reason(status: str, reply_code: str, diagnostic: str, report: str) -> str:
    if _EXCHANGE_EDGE_BLOCK.search(diagnostic):  # Exchange Online's directory-based edge blocking (5.4.1): no
        return "user-unknown" if status == "5.4.1" else "unknown"  # such recipient; elsewhere: some access rule
    for text in (diagnostic, report):
        for reason, pattern in _WORDINGS:
            if pattern.search(text):
                return reason
    for reason, pattern in _STATUSES:
        if pattern.match(status):
            return reason
    if status.startswith("4") or reply_code.startswith("4"):
        return "temporary"
    return "unknown"
