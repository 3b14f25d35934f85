"""The bounce corpus (../shared/bounce-corpus, 465 real reports with Sisimai's verdicts) as both corpus tests read
it: Sisimai's classes, and the ONE list of samples where our rules and Sisimai disagree, with why per sample.
tests/test_classify_corpus.py (the rules offline) and tests/test_mailbox_corpus.py (a real send read from Dovecot
by `newsletter mailbox`) both import it, so the two can never hold different exceptions.

Policy for Sisimai's `filtered` (the recipient's own filter: soft). Sisimai often knows from the provider (NTT
docomo, au/KDDI answer '550 Unknown user' when their user's domain filter refuses a message) or the SMTP step that
a 'user unknown' came from a filter. We judge each report on its own words only, never by provider name: where
the report says the user or mailbox does not exist, and no word of it speaks of a filter, spam, a block, a policy
or a refusal by the recipient, it reads exactly like a dead address' report and we call it dead (a member in that
situation could not receive the edition in any case; when the member says otherwise, `newsletter unsuppress`).
Where it speaks of a filter or a refusal by the recipient, or the refusal came only after the end of DATA (the
address had been accepted), it stays soft. No sample of a sender-side or transient reason is ever dead.
"""

from __future__ import annotations

import re
from pathlib import Path

CORPUS = Path("/work/shared/bounce-corpus")
if not CORPUS.is_dir():
    CORPUS = Path(__file__).resolve().parents[2] / "shared" / "bounce-corpus"

# Sisimai's reasons, grouped as the corpus README says a newsletter must treat them.
SENDER_SIDE = {"blocked", "spamdetected", "policyviolation", "authfailure", "requireptr", "badreputation",
               "securityerror", "contenterror", "mesgtoobig", "virusdetected", "norelaying", "notcompliantrfc",
               "rejected", "syntaxerror", "failedstarttls", "emptyaddress"}
TRANSIENT = {"mailboxfull", "expired", "systemerror", "systemfull", "networkerror", "toomanyconn", "exceedlimit",
             "mailererror", "onhold", "undefined", "speeding", "suspend", "ratelimited"}
FILTERED = {"filtered", "notaccept"}  # when not a hard bounce: the recipient's own filter (soft)


def sisimai_class(entry: dict[str, object] | None) -> str:
    """hard, sender-side, transient, filtered, feedback, vacation, delivered, or none (no verdict)."""
    if not entry or entry.get("reason") in ("none", ""):
        return "none"
    reason = str(entry["reason"])
    if entry["hardbounce"] == 1:
        return "hard"
    if reason in SENDER_SIDE:
        return "sender-side"
    if reason in TRANSIENT:
        return "transient"
    if reason in FILTERED:
        return "filtered"
    return reason  # vacation, feedback, delivered


# --- where Sisimai and our rules disagree, and why -------------------------------------------------------------
# Hard bounces whose own text contradicts a dead address: not dead, and left out of the 95% target.
HARD_TEXT_CONTRADICTS = {
    "lhost-postfix-80": "'MailFrom domain is listed in Spamhaus': our own domain on a blocklist (refused), whatever "
                        "Sisimai's 5.1.0 says",
    "lhost-postfix-05": "'450 4.1.1': the server called it temporary (a 4xx is never dead; it counts as soft)",
    "lhost-exim-37": "'553 neko.example.com does not exist' after end of data names our own (the sender's) domain, "
                     "not the recipient's",
    "lhost-opensmtpd-12": "a delay notice ('only a temporary failure report ... kept in the queue for up to 7 "
                          "days'): filed as a delay, not a bounce",
    "lhost-sendmail-14": "a bounce forwarded by a person ('Fwd:' from her own address): a forwarded text cannot "
                         "prove itself; a person's mail is for a person to read",
    "lhost-amazonses-09": "an Amazon SES notification in JSON (SNS), not a bounce message a mailbox receives",
    "lhost-amazonses-10": "an Amazon SES notification in JSON (SNS), not a bounce message a mailbox receives",
    "lhost-v5sendmail-03": "the transcript has '421 Deferred: Connection timed out' for the same recipient beside "
                           "'550 User Unknown' (and the subject says Deferred): a 4xx, soft",
}
# Hard bounces whose text does not say clearly that the address is dead: listed for a person (or soft). They
# count as missed in the target: a rule that starts calling one of them dead must be looked at again.
HARD_UNCLEAR = {
    "lhost-exim-30": "'554 5.7.1 Recipient address rejected: Access denied' outside Exchange Online (where it is "
                     "5.4.1): some access rule, not proof the address is gone",
    "lhost-exim-31": "Exim's 'the account or domain may not exist, they may be blacklisted, or missing the proper "
                     "dns entries': three different causes",
    "rhost-messagelabs-03": "'542 kijitora@example.com Rejected' says nothing about why",
    "rhost-aol-06": "'Name service error ... Malformed or unexpected name server reply' (5.4.4): a DNS server "
                    "fault, temporary",
    "lhost-v5sendmail-07": "one report for three recipients with three different errors (open relay, host unknown, "
                           "user unknown), the report blaming our relay too",
    "lhost-verizon-02": "Verizon's text names the envelope sender and the original sender beside the recipient: "
                        "two candidates, so no single recipient is judged dead",
}
NOT_DEAD_THOUGH_HARD = HARD_TEXT_CONTRADICTS | HARD_UNCLEAR

# Sisimai: filtered (soft); we: dead, because the report's own words say the address does not exist and say
# nothing of a filter, spam, a block, a policy or a refusal by the recipient (see the policy above).
DEAD_THOUGH_FILTERED = {
    "lhost-amazonses-02": "'550 ... Unknown user this-local-part-does-not-exist-on-the-server@docomo.ne.jp'",
    "lhost-amazonworkmail-02": "'550 5.2.1 <filtered@example.jp>... User Unknown' (the word is the address)",
    "lhost-courier-02": "'550 Unknown user kijitora@example.jp'",
    "lhost-exchange2003-04": "'Recipient Not Found'",
    "lhost-mfilter-01": "'550 unknown user <kijitora@example.com>' (m-FILTER is the name of the relay)",
    "lhost-mfilter-03": "'550 kijitora@example.org... No such user' (m-FILTER is the name of the relay)",
    "lhost-mxlogic-03": "'550 unknown user<kijitora@example.co.jp>'",
    "lhost-receivingses-01": "'550 5.1.1 Mailbox does not exist'",
    "lhost-receivingses-02": "'550 5.1.1 Mailbox does not exist'",
    "lhost-sendmail-02": "'550 5.2.1 <filtered@example.com>... User Unknown' (the word is the address)",
    "lhost-sendmail-19": "'550 Unknown user kijitora@ntt.example.ne.jp'",
    "lhost-sendmail-48": "Postfix's '550 5.7.1 <...@sfr.fr>: Recipient address rejected: User unknown'",
    "lhost-sendmail-50": "'550 : User unknown'",
    "lhost-sendmail-51": "'550 : User unknown'",
    "lhost-surfcontrol-01": "'550 kijitora@example.com... No such user' (SurfControl is the name of the relay)",
    "lhost-x1-01": "'User unknown'",
    "lhost-x1-02": "'User unknown'",
    "lhost-x2-01": "'This user doesn't have a example.co.jp account'",
    "lhost-x2-02": "'This user doesn't have a example.com account' (two recipients)",
    "lhost-yahoo-06": "'550: : User unknown'",
    "lhost-zoho-03": "'Invalid Address, ... Requested action not taken: mailbox unavailable'",
    "make-test-04": "'550 Unknown user message-is-rejected-by-the-domain-fileters@docomo.ne.jp': only the address "
                    "speaks of a filter; the words say unknown user",
    "make-test-22": "'554 delivery error: dd This user doesn't have a yahoo.com account'",
    "rfc3464-35": "'550 user unknown'",
    "rfc3464-42": "'the email account that you tried to reach does not exist.'",
    "rfc3464-57": "Gmail's '** Address not found ** ... the address couldn't be found'",
    "rfc3464-66": "'the email account that you tried to reach does not exist.'",
    "rhost-gsuite-08": "Gmail's '** Address not found ** ... the address couldn't be found'",
    "rhost-kddi-01": "'550 : User unknown'",
    "rhost-nttdocomo-01": "'550 Unknown user azumakuniyuki@ntt.docomo.example.ne.jp'",
}
# Not here: lhost-office365-04 ('unknown recipient') names otsu-sakaba-hunter-neko-nyaaaaaaan@ezweb.ne.jp, not
# Sisimai's recipient otsu-sakaba-hunter-nyaaaaaaan@: for the member that was sent to, the report proves nothing
# (listed for a person).
# What would make a filtered sample's text speak of a filter or a refusal (the address itself taken out).
FILTER_WORDS = re.compile(r"filter|spam|block|polic(y|ies)|preferences|rejected by (the )?recipient|badrcptto|"
                          r"refused|denied", re.IGNORECASE)

# Samples in which Sisimai finds no failure, but we do find a dead address.
DEAD_THOUGH_NO_VERDICT = {
    "lhost-mimecast-01": "Mimecast's text quotes Exchange Online's '5.4.1 Recipient address rejected: Access "
                         "denied' (directory-based edge blocking: no such recipient); Sisimai cannot read the format",
    "lhost-x1-03": "'kijitora@example.org [User unknown]': Sisimai finds no failure in this format",
}
# Complaints we do not read as complaints.
NOT_A_COMPLAINT = {
    "lhost-amazonses-11": "an Amazon SES notification in JSON (SNS), not a feedback report a mailbox receives",
}


def spelled(raw: bytes, recipient: str) -> str:
    """The recipient as the sample writes it: Sisimai gives it in lower case, which an RFC 2047 word in it does
    not survive (lhost-sendmail-25); a member list holds it as written."""
    at = raw.lower().find(recipient.lower().encode("utf-8", "replace"))
    return raw[at: at + len(recipient)].decode("utf-8", "replace") if at >= 0 else recipient


def may_be_dead(sample: str, klass: str) -> bool:
    """Whether a dead verdict for this sample is right: a hard bounce, or a listed exception. Never for a
    sender-side or transient reason."""
    if klass in ("sender-side", "transient"):
        return False
    return (klass == "hard" or (klass == "filtered" and sample in DEAD_THOUGH_FILTERED)
            or (klass == "none" and sample in DEAD_THOUGH_NO_VERDICT))


def hard_target(dead: dict[str, bool]) -> tuple[tuple[int, int], tuple[int, int]]:
    """(dead, all) of the hard bounces with a Message-ID given (sample: dead?): raw, and without the samples
    whose own text contradicts a dead address."""
    raw = (sum(dead.values()), len(dead))
    kept = {s: d for s, d in dead.items() if s not in HARD_TEXT_CONTRADICTS}
    return raw, (sum(kept.values()), len(kept))


def figures(raw: tuple[int, int], kept: tuple[int, int]) -> str:
    return (f"hard bounces with a Message-ID dead: {raw[0]}/{raw[1]} ({100 * raw[0] / max(raw[1], 1):.1f}%) "
            f"against Sisimai's hardbounce flag; {kept[0]}/{kept[1]} ({100 * kept[0] / max(kept[1], 1):.1f}%) "
            f"without the {raw[1] - kept[1]} whose own text contradicts a dead address")
