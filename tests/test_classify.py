"""classify.read_report on hand-made hostile messages (it must never raise, and what it returns must be one
printable line), and the rule table on the cases issue 18 names. The real-world formats are in
test_classify_corpus.py."""

from __future__ import annotations

import email
import email.errors
import email.header
import email.policy
import subprocess
import sys
import time

import pytest

from newsletter_cli.mailbox import classify, mailtext, rules
from newsletter_cli.mailbox.classify import Kind, Verdict

MEMBER = "piet.jansen@gemeente-x.nl"
ORIGINAL_ID = "<a1b2c3d4e5f6@vzhg.nl>"


def dsn(*, status: str = "5.1.1", diagnostic: str = "smtp; 550 5.1.1 <piet.jansen@gemeente-x.nl>: User unknown",
        final: str = MEMBER, original: str | None = None, action: str = "failed", text: str = "",
        subject: bytes = b"Undelivered Mail Returned to Sender", close: bool = True) -> bytes:
    """An RFC 3464 report as Postfix writes it, for the member, of our message ORIGINAL_ID."""
    original_line = f"Original-Recipient: rfc822; {original}\r\n" if original else ""
    parts = [
        b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + (text or "This is the mail system.").encode() + b"\r\n",
        (f"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.gemeente-x.nl\r\n\r\n"
         f"Final-Recipient: rfc822; {final}\r\n{original_line}Action: {action}\r\nStatus: {status}\r\n"
         f"Diagnostic-Code: {diagnostic}\r\n").encode(),
        (f"Content-Type: text/rfc822-headers\r\n\r\nFrom: VZHG <nieuwsbrief@vzhg.nl>\r\nTo: {MEMBER}\r\n"
         f"Message-ID: {ORIGINAL_ID}\r\nSubject: Nieuwsbrief\r\n").encode(),
    ]
    body = b"".join(b"--BOUNDARY\r\n" + part for part in parts) + (b"--BOUNDARY--\r\n" if close else b"")
    return (b"From: MAILER-DAEMON@mx.vzhg.nl (Mail Delivery System)\r\nTo: nieuwsbrief@vzhg.nl\r\nSubject: " + subject
            + b"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; "
              b"boundary=\"BOUNDARY\"\r\n\r\n" + body)


def read(raw: bytes) -> classify.Report | None:
    return classify.read_report(email.message_from_bytes(raw), raw)  # compat32, as newsletter mailbox parses


def only_failure(raw: bytes) -> classify.Failure:
    report = read(raw)
    assert report is not None and report.kind is Kind.BOUNCE and len(report.failures) == 1, report
    return report.failures[0]


def printable(text: str) -> bool:
    return text.isprintable() and "\n" not in text


# --- hostile input -----------------------------------------------------------------------------------------------

def test_an_undecodable_encoded_word_in_the_subject_does_not_stop_the_reading():
    raw = dsn(subject=b"=?utf-8?B?abcdefghi?=")
    msg = email.message_from_bytes(raw)
    with pytest.raises(email.errors.HeaderParseError):  # what stopped every run before
        email.header.decode_header(str(msg["Subject"]))
    assert mailtext.header(msg, "Subject") == "=?utf-8?B?abcdefghi?="
    failure = only_failure(raw)
    assert (failure.address, failure.verdict, failure.reason) == (MEMBER, Verdict.DEAD, "user-unknown")


def test_encoded_words_in_unknown_charsets_and_raw_bytes_in_headers_are_read():
    raw = (b"From: =?x-unknown?Q?Mail=E9_Daemon?= <MAILER-DAEMON@mx.example.org>\r\n"
           b"Subject: Unzustellbar: caf\xe9 \x1b[2J\x07\r\nX-Odd: \xff\xfe\r\n\r\nHallo\r\n")
    msg = email.message_from_bytes(raw)
    for name in ("From", "Subject", "X-Odd", "Missing"):
        assert printable(mailtext.header(msg, name))
    assert mailtext.header(msg, "From").startswith("Mail")
    assert "[2J" in mailtext.header(msg, "Subject") and "\x1b" not in mailtext.header(msg, "Subject")
    assert read(raw) is None or read(raw).kind is Kind.BOUNCE  # read, whatever it is


def test_a_body_in_an_unknown_charset_is_read():
    raw = (b"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.gemeente-x.nl>\r\nSubject: Returned mail: User unknown\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=unknown-8bit\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\n"
           b"Gr\xfc\xdfe \xe2\x80\x94 ----- The following addresses had permanent fatal errors -----\r\n"
           b"<piet.jansen@gemeente-x.nl>\r\n    (reason: 550 5.1.1 User unknown)\r\n\r\n"
           b"----- Original message -----\r\nMessage-ID: <a1b2c3d4e5f6@vzhg.nl>\r\n")
    msg = email.message_from_bytes(raw)
    with pytest.raises(LookupError):  # what stopped every run before
        msg.get_payload(decode=True).decode(msg.get_content_charset())
    report = read(raw)
    assert report is not None and report.message_ids == [ORIGINAL_ID]
    assert [(f.address, f.verdict, f.status) for f in report.failures] == [(MEMBER, Verdict.DEAD, "5.1.1")]


def test_a_multipart_cut_off_before_its_closing_boundary_is_read():
    raw = dsn(close=False)
    raw = raw[: raw.index(b"--BOUNDARY\r\nContent-Type: text/rfc822-headers")] + b"--BOUND"  # cut mid-boundary
    assert only_failure(raw).verdict is Verdict.DEAD


def test_broken_mime_is_read_as_far_as_it_goes():
    raw = (b"From: MAILER-DAEMON@mx.example.org\r\nSubject: Delivery Status Notification (Failure)\r\n"
           b"Content-Type: multipart/report; boundary=\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           b"!!not base64 at all\r\n--\r\n--\r\n")
    report = read(raw)
    assert report is not None and report.kind is Kind.BOUNCE and report.failures == []
    assert read(b"") is None and read(b"\r\n\r\n") is None  # nothing at all: not a report


def test_a_20_mb_text_part_is_read_only_as_far_as_needed():
    huge = b"Content-Type: text/plain\r\n\r\n" + b"nothing to see here " * 1_000_000  # 20 MB
    raw = dsn().replace(b"--BOUNDARY--\r\n", b"--BOUNDARY\r\n" + huge + b"\r\n--BOUNDARY--\r\n")
    msg = email.message_from_bytes(raw)
    big = [p for p in msg.walk() if len(str(p.get_payload())) > 10_000_000]
    assert len(mailtext.text_of(big[0])) == mailtext.TEXT_LIMIT
    started = time.monotonic()
    failure = only_failure(raw)
    assert failure.verdict is Verdict.DEAD
    assert time.monotonic() - started < 30  # not a performance target (that is bench/): it must merely finish


def test_final_recipient_and_original_recipient_are_both_kept():
    failure = only_failure(dsn(final="p.jansen@mail.gemeente-x.nl", original=MEMBER))
    assert (failure.address, failure.original_recipient) == ("p.jansen@mail.gemeente-x.nl", MEMBER)
    assert only_failure(dsn()).original_recipient == ""


def test_what_a_stranger_wrote_comes_out_as_one_printable_line():
    failure = only_failure(dsn(diagnostic="smtp; 550 5.1.1 \x1b[31mUser\x07 unknown\r\n\tand =1B[2J more" + "x" * 900))
    for text in (failure.diagnostic, failure.detail, failure.address, failure.explanation):
        assert printable(text)
    assert len(failure.diagnostic) <= 300 and "\x1b" not in failure.diagnostic


def test_a_report_is_read_even_when_an_internal_step_fails(monkeypatch):
    def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(classify, "_dsn", broken)
    report = read(dsn())
    assert report is not None and report.failures == [] and "RuntimeError" in report.unreadable
    assert report.message_ids == [ORIGINAL_ID]


# --- kinds of report ----------------------------------------------------------------------------------------------

def test_delay_delivered_and_read_receipts_are_reports_without_failures():
    delayed = read(dsn(action="delayed", status="4.4.1", diagnostic="smtp; 421 4.4.1 Connection timed out"))
    assert (delayed.kind, delayed.failures) == (Kind.DELAY, [])
    delivered = read(dsn(action="delivered", status="2.0.0", diagnostic="smtp; 250 2.0.0 Ok"))
    assert (delivered.kind, delivered.failures, delivered.message_ids) == (Kind.DELIVERED, [], [ORIGINAL_ID])
    mdn = (b"From: piet.jansen@gemeente-x.nl\r\nSubject: Gelezen: Nieuwsbrief\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/report; report-type=disposition-notification; boundary=B\r\n\r\n"
           b"--B\r\nContent-Type: text/plain\r\n\r\nGelezen\r\n--B\r\nContent-Type: message/disposition-notification"
           b"\r\n\r\nFinal-Recipient: rfc822; piet.jansen@gemeente-x.nl\r\nOriginal-Message-ID: <a1b2c3d4e5f6@vzhg.nl>"
           b"\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n--B--\r\n")
    assert read(mdn).kind is Kind.READ_RECEIPT


def arf(original_rcpt_to: str | None) -> bytes:
    field = f"Original-Rcpt-To: {original_rcpt_to}\r\n" if original_rcpt_to else ""
    return (b"From: staff@hotmail.com\r\nSubject: complaint\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/report; report-type=feedback-report; boundary=B\r\n\r\n"
            b"--B\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n"
            b"--B\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: x/1\r\n"
            b"Version: 1\r\n" + field.encode() + b"\r\n"
            b"--B\r\nContent-Type: message/rfc822\r\n\r\nFrom: nieuwsbrief@vzhg.nl\r\nTo: " + MEMBER.encode()
            + b"\r\nMessage-ID: " + ORIGINAL_ID.encode() + b"\r\nSubject: Nieuwsbrief\r\n\r\nHallo\r\n--B--\r\n")


@pytest.mark.parametrize("field", [MEMBER, None], ids=["original-rcpt-to", "the-original's-to"])
def test_a_spam_complaint_names_the_member_and_the_message(field):
    report = read(arf(field))
    assert (report.kind, report.complained_about, report.message_ids) == (Kind.COMPLAINT, MEMBER, [ORIGINAL_ID])
    assert report.failures == []


def test_an_auto_reply_from_an_empty_return_path_is_an_auto_reply():
    raw = (b"Return-Path: <>\r\nFrom: Piet Jansen <piet.jansen@gemeente-x.nl>\r\nSubject: Automatisch antwoord: "
           b"Nieuwsbrief\r\nAuto-Submitted: auto-replied\r\nIn-Reply-To: <a1b2c3d4e5f6@vzhg.nl>\r\n\r\nIk ben afwezig."
           b"\r\n")
    report = read(raw)
    assert (report.kind, report.failures, report.message_ids) == (Kind.AUTO_REPLY, [], [ORIGINAL_ID])


def test_a_forwarded_bounce_from_a_person_is_for_a_person():
    raw = (b"From: Piet Jansen <piet.jansen@gemeente-x.nl>\r\nSubject: Fwd: Undelivered Mail Returned to Sender\r\n"
           b"\r\n> 550 5.1.1 <jan@gemeente-x.nl>: User unknown\r\n")
    assert read(raw) is None


# --- the rules ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "diagnostic", "verdict", "reason"), [
    ("5.7.1", "550 5.7.1 Unauthenticated email from vzhg.nl is not accepted due to domain's DMARC policy",
     Verdict.REFUSED, "dmarc"),
    ("", "550 Unknown user", Verdict.DEAD, "user-unknown"),
    ("5.2.2", "552 5.2.2 <piet.jansen@gemeente-x.nl>: Recipient address rejected: mailbox full",
     Verdict.SOFT, "mailbox-full"),
    ("5.7.1", "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
     Verdict.REFUSED, "blocklist"),
    ("5.7.1", "554 5.7.1 Your IP 192.0.2.1 is listed at spamhaus", Verdict.REFUSED, "blocklist"),
    ("5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
     Verdict.DEAD, "user-unknown"),
    ("5.4.1", "550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [DB5EUR03FT.eop-EUR03.prod]",
     Verdict.DEAD, "user-unknown"),  # Exchange Online's directory-based edge blocking: not in the tenant
    ("5.7.1", "554 5.7.1 <piet@gemeente-x.nl>: Recipient address rejected: Access denied", Verdict.UNKNOWN,
     "unknown"),  # the same words from some access rule elsewhere: a person looks
    ("5.4.1", "550 5.4.1 All recipient addresses rejected : Access denied", Verdict.REFUSED, "access-denied"),
    ("4.1.1", "450 4.1.1 <piet@gemeente-x.nl>: Recipient address rejected: User unknown", Verdict.SOFT,
     "user-unknown"),  # a temporary reply is never dead
    ("5.1.1", "550 5.1.1 User unknown (in reply to end of DATA command)", Verdict.SOFT, "recipient-filter"),
    ("5.1.1", "SMTP error from remote mail server after MAIL FROM:<nb@vzhg.nl>: 550 5.1.1 unknown", Verdict.UNKNOWN,
     "unknown"),  # refused before any recipient was named
    ("5.7.26", "550 5.7.26 This mail has been blocked because the sender is unauthenticated.", Verdict.REFUSED,
     "authentication"),
    ("5.7.23", "550 5.7.23 The message was rejected because of Sender Policy Framework violation", Verdict.REFUSED,
     "spf"),
    ("5.3.4", "552 5.3.4 Message size exceeds fixed maximum message size", Verdict.REFUSED, "message-too-big"),
    ("5.7.1", "554 5.7.1 <piet@elders.nl>: Relay access denied", Verdict.REFUSED, "relaying"),
    ("5.7.1", "550 5.7.1 Message content rejected, UBE", Verdict.REFUSED, "spam"),
    ("5.7.25", "550 5.7.25 The IP address sending this message does not have a PTR record", Verdict.REFUSED,
     "reverse-dns"),
    ("5.2.1", "550 5.2.1 The email account that you tried to reach is disabled.", Verdict.SOFT, "account-disabled"),
    ("4.7.0", "421 4.7.0 Try again later, closing connection.", Verdict.SOFT, "rate-limited"),
    ("4.4.7", "Message expired: unable to deliver in 2 days", Verdict.SOFT, "expired"),
    ("5.1.2", "550 5.1.2 Host unknown (Name server: gemeente-x.nl: host not found)", Verdict.DEAD, "no-such-domain"),
    ("5.1.6", "550 5.1.6 recipient no longer on server", Verdict.DEAD, "has-moved"),
    ("5.0.0", "550 Requested action not taken", Verdict.UNKNOWN, "unknown"),
    ("", "", Verdict.UNKNOWN, "unknown"),
    ("5.5.0", "", Verdict.REFUSED, "protocol"),
    ("", "451 temporary local problem", Verdict.SOFT, "temporary"),
])
def test_rules(status, diagnostic, verdict, reason):
    judged = rules.judge(status, rules_code(diagnostic), diagnostic)
    assert (judged.verdict, judged.reason) == (verdict, reason)
    assert judged.explanation


def rules_code(diagnostic: str) -> str:
    return diagnostic[:3] if diagnostic[:3].isdigit() else ""


def test_a_report_contradicting_its_own_code_is_listed_not_dead():
    raw = dsn(text="Your message to <piet> was automatically rejected:\r\nNot enough disk space")
    failure = only_failure(raw)
    assert (failure.verdict, failure.reason) == (Verdict.UNKNOWN, "contradictory")
    assert only_failure(dsn(text="I'm sorry to have to inform you that your message could not be delivered.")
                        ).verdict is Verdict.DEAD


def test_a_does_not_exist_about_our_own_domain_is_not_the_members_death():
    failure = only_failure(dsn(status="5.0.0", diagnostic="smtp; 553 vzhg.nl does not exist"))
    assert (failure.verdict, failure.reason) == (Verdict.REFUSED, "sender-address")


def test_the_table_is_whole():
    reasons = {reason for reason, _ in rules.WORDINGS} | {reason for reason, _ in rules.STATUSES}
    assert reasons <= set(rules.REASONS)
    for reason, (verdict, explanation) in rules.REASONS.items():
        assert explanation.endswith((".", ")")) and printable(explanation), reason
        if verdict is Verdict.REFUSED:  # news for the secretariat: it says what to do
            assert any(word in explanation for word in ("check", "ask", "run", "send", "make", "look")), reason
        if reason in ("dmarc", "spf", "dkim", "authentication"):
            assert "`newsletter doctor`" in explanation
    assert {v for v, _ in rules.REASONS.values()} == set(Verdict)


def test_a_detector_tripping_over_a_message_prints_no_traceback():
    """flufl.bounce's Sina detector calls .lower() on a header the parser returned as a Header object (raw bytes
    in From): it logs the traceback. In a process of its own, as newsletter mailbox runs (no pytest logging)."""
    raw = (b"From: Mailer \xff <MAILER-DAEMON@sina.com>\r\nSubject: failure notice\r\n\r\n"
           b"Sorry, I couldn't deliver to <piet.jansen@gemeente-x.nl>\r\n550 5.1.1 User unknown\r\n")
    code = ("import email, sys; from newsletter_cli.mailbox import classify; raw = sys.stdin.buffer.read(); "
            "print(classify.read_report(email.message_from_bytes(raw), raw).kind)")
    done = subprocess.run([sys.executable, "-c", code], input=raw, capture_output=True, timeout=60, check=True)
    assert done.stdout.decode().strip() == "bounce"
    assert done.stderr == b""


def test_an_html_only_bounce_is_read_without_its_markup():
    raw = (b"From: postmaster@gemeente-x.nl\r\nSubject: Onbestelbaar: Nieuwsbrief\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/html; charset=utf-8\r\n\r\n<html><style>p {color: red}</style><body><p>Uw bericht aan "
           b"<b>piet.jansen@gemeente-x.nl</b> kon niet worden bezorgd.</p><p>Remote server returned '550 5.1.10 "
           b"RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'</p></body></html>\r\n")
    failure = only_failure(raw)
    assert (failure.address, failure.verdict, failure.status) == (MEMBER, Verdict.DEAD, "5.1.10")
    assert "<" not in failure.diagnostic and "color" not in failure.diagnostic


@pytest.mark.parametrize("policy", [email.policy.compat32, email.policy.default], ids=["compat32", "default"])
def test_either_parser_policy_reads_hostile_messages_alike(policy):
    """newsletter mailbox parses with compat32; the modern policy decodes headers on access, where a broken
    encoded word or an unknown charset can raise: read_report must read both alike, without its safety net."""
    hostile = [dsn(subject=b"=?utf-8?B?abcdefghi?="), dsn(subject=b"=?unknown-8bit?Q?caf=E9?= \xe9\xff"),
               dsn(final="p.jansen@mail.gemeente-x.nl", original=MEMBER), dsn(close=False)[:-200], arf(None),
               b"From: \xff\xfe <MAILER-DAEMON@x>\r\nSubject: =?x-unknown?B?////?=\r\n\r\n<a@b.c>: 550 no such user\r\n"]
    for raw in hostile:
        ours = classify.read_report(email.message_from_bytes(raw, policy=policy), raw)
        theirs = classify.read_report(email.message_from_bytes(raw), raw)
        assert ours is not None and ours.unreadable == ""
        assert [(f.address, f.verdict) for f in ours.failures] == [(f.address, f.verdict) for f in theirs.failures]
        assert all(printable(f.diagnostic) for f in ours.failures)


def test_an_encoded_word_recipient_names_the_member_in_either_spelling():
    """Sendmail writes a non-ASCII local part as the mail program gave it, an RFC 2047 word
    (lhost-sendmail-25); the member's list may hold that word, or the address it stands for."""
    from newsletter_cli.mailbox.proof import names

    raw = (b"From: MAILER-DAEMON@mx.example.org\r\nTo: nieuwsbrief@vzhg.nl\r\nSubject: Returned mail\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\nUser unknown\r\n--b\r\nContent-Type: message/delivery-status\r\n"
           b"\r\nReporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; =?utf-8?B?8J+QiPCfkIg=?=@example.org"
           b"\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n--b--\r\n")
    report = classify.read_report(email.message_from_bytes(raw), raw)
    assert report is not None and len(report.failures) == 1
    failure = report.failures[0]
    assert failure.verdict is Verdict.DEAD
    assert names(failure, "=?utf-8?B?8J+QiPCfkIg=?=@example.org")
    assert names(failure, "\U0001f408\U0001f408@Example.org")
    assert not names(failure, "=?utf-8?B?8J+QiA==?=@example.org")  # one cat is another address
    assert not names(failure, "=?utf-8?B?abcdefghi?=@example.org")  # a broken word: compared as it is, no error


@pytest.mark.parametrize("diagnostic", ["550 Unknown user (rejected by the domain filter)",
                                        "550 5.7.1 Message rejected by recipient",
                                        "554 5.2.0 No such user here? The recipient's filter refused it"])
def test_a_user_unknown_that_speaks_of_the_recipients_filter_is_soft(diagnostic):
    """Sisimai's 'filtered': judged on the words; where they speak of the recipient's filter it is soft, never dead
    (a bare 'Unknown user' reads as a dead address, whoever sent it)."""
    judged = rules.judge("5.0.0", diagnostic[:3], diagnostic)
    assert (judged.verdict, judged.reason) == (Verdict.SOFT, "recipient-filter")
    assert rules.judge("5.0.0", "550", "550 Unknown user").verdict is Verdict.DEAD
