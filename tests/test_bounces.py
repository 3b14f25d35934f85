"""Bounce formats: RFC 3464 reports from Exchange Online, Gmail and Postfix, qmail's plain text (flufl.bounce),
auto-replies; and the suppression file's behaviour (Excel format, each address once, concurrent writers)."""

from __future__ import annotations

import email
from multiprocessing import Process
from pathlib import Path

import pytest

from newsletter_cli.errors import NewsletterError
from newsletter_cli.mailbox import classify as bounces
from newsletter_cli.mailbox.classify import Kind, Verdict
from newsletter_cli.members import suppressions, unsubscribe
from newsletter_cli.members.suppressions import addresses as read_suppressions
from newsletter_cli.project import Project
from newsletter_cli.settings import parse_settings

import mailbox_samples as samples

MEMBER = "piet.jansen@example.org"
ORIGINAL = (b"From: VZHG Nieuwsbrief <nieuwsbrief@vzhg.nl>\r\nTo: <piet.jansen@example.org>\r\n"
            b"Subject: Nieuwsbrief VZHG - september 2025\r\nMessage-ID: <1759.abc.7@vzhg.nl>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nHallo\r\n")


def parsed(raw: bytes) -> bounces.Report | None:
    return bounces.read_report(email.message_from_bytes(raw), raw)


@pytest.mark.parametrize(("make", "status", "verdict", "reason"), [
    (samples.exchange_online, "5.1.10", Verdict.DEAD, "user-unknown"),
    (samples.gmail_mailbox_full, "5.2.2", Verdict.SOFT, "mailbox-full"),
    (samples.postfix, "5.1.1", Verdict.DEAD, "user-unknown"),
    (samples.qmail, "5.1.1", Verdict.DEAD, "user-unknown"),
], ids=["exchange-online", "gmail", "postfix", "qmail"])
def test_each_format_gives_the_member_the_verdict_and_the_original_message_id(make, status, verdict, reason):
    report = parsed(make(MEMBER, ORIGINAL))
    assert report is not None and report.kind is Kind.BOUNCE
    assert [(f.address, f.status, f.verdict, f.reason) for f in report.failures] == [(MEMBER, status, verdict, reason)]
    assert report.message_ids == ["<1759.abc.7@vzhg.nl>"]


def test_plain_text_bounce_keeps_only_its_own_paragraph_as_detail():
    assert parsed(samples.qmail(MEMBER, ORIGINAL)).failures[0].detail == (
        f"5.1.1 <{MEMBER}>: Sorry, no mailbox here by that name. (#5.1.1)")


def test_diagnostic_is_kept_on_one_line():
    failure = parsed(samples.postfix(MEMBER, ORIGINAL)).failures[0]
    assert failure.detail.startswith("5.1.1 550 5.1.1 <piet.jansen@example.org>: Recipient address rejected")
    assert "\n" not in failure.detail and "local recipient table" in failure.detail


@pytest.mark.parametrize("raw", [samples.ordinary("jan@example.org"),
                                 samples.unsubscribe(MEMBER, "afmelden-" + "0" * 32)])
def test_not_reports(raw):
    assert parsed(raw) is None


def test_an_out_of_office_is_an_auto_reply_without_failures():
    report = parsed(samples.out_of_office(MEMBER, "Nieuwsbrief"))
    assert report is not None and report.kind is Kind.AUTO_REPLY and report.failures == []


def test_auto_reply_is_recognised_and_a_person_is_not():
    assert bounces.is_auto_reply(email.message_from_bytes(samples.out_of_office(MEMBER, "x")))
    assert not bounces.is_auto_reply(email.message_from_bytes(samples.ordinary("jan@example.org")))


def test_malformed_report_is_a_bounce_without_failures():
    report = parsed(samples.malformed())
    assert report is not None and report.kind is Kind.BOUNCE and report.failures == []


def test_delayed_is_a_delay_notice_not_a_failure():
    raw = samples.postfix(MEMBER, ORIGINAL).replace(b"Action: failed", b"Action: delayed").replace(
        b"Status: 5.1.1", b"Status: 4.4.1")
    report = parsed(raw)
    assert report.kind is Kind.DELAY and report.failures == []


# --- the unsubscribe token ---------------------------------------------------------------------------------------

def test_token_mailto_and_the_example_secret_refused():
    secret = "x" * 20
    link = unsubscribe.mailto("mailto:afmelden@vzhg.nl?subject=Afmelden&body=Graag", "Piet@Example.org", secret)
    token = unsubscribe.token("piet@example.org", secret)
    assert link == f"mailto:afmelden@vzhg.nl?subject=afmelden-{token}&body=Graag"
    assert unsubscribe.find_token(f"Re: AFMELDEN-{token.upper()}") == token
    assert unsubscribe.find_token("afmelden-1234") is None
    with pytest.raises(NewsletterError, match=r"the example from \.env\.example"):
        parse_settings({"LIST_UNSUBSCRIBE_SECRET": "change-me-to-a-long-random-string"}, {})
    with pytest.raises(NewsletterError, match="too short"):
        parse_settings({"LIST_UNSUBSCRIBE_SECRET": "kort-geheim"}, {})


def test_default_mailto_goes_to_the_from_mailbox_where_the_bounces_arrive():
    both = parse_settings({"NEWSLETTER_FROM": "VZHG <nb@vzhg.nl>", "NEWSLETTER_REPLY_TO": "Secretariaat <s@vzhg.nl>"}, {})
    assert unsubscribe.mailto_base(both) == "mailto:nb@vzhg.nl"
    configured = parse_settings({"NEWSLETTER_FROM": "nb@vzhg.nl", "LIST_UNSUBSCRIBE": "mailto:afmelden@vzhg.nl"}, {})
    assert unsubscribe.mailto_base(configured) == "mailto:afmelden@vzhg.nl"


def test_the_secret_lives_in_the_project_and_an_old_per_user_one_is_taken_over(project, tmp_path_factory,
                                                                               monkeypatch):
    """Older versions kept the generated secret in the user's data folder; now it lives in the project folder. A
    PC that still has the old one hands it to the project on first use, so the tokens already sent with it keep
    working from any PC with the project folder (tests/test_mailbox_trust.py has the colleague's PC end to end)."""
    profile = tmp_path_factory.mktemp("profile")
    monkeypatch.setenv("XDG_DATA_HOME", str(profile))  # this test's own user data folder
    old = unsubscribe.secret_path()
    assert profile in old.parents and project not in old.parents
    old.parent.mkdir(parents=True)
    old.write_text("an-old-per-user-secret-of-the-secretary\n", encoding="ascii")
    sent_before = unsubscribe.token("piet@example.org", "an-old-per-user-secret-of-the-secretary")
    settings = parse_settings({}, {})
    assert unsubscribe.load_secret(settings, Project(project)) == "an-old-per-user-secret-of-the-secretary"
    assert (project / "unsubscribe-secret").read_text(encoding="ascii").strip() == \
        "an-old-per-user-secret-of-the-secretary"

    old.unlink()  # a new laptop: only the project folder came along
    assert unsubscribe.load_secret(settings, Project(project)) == "an-old-per-user-secret-of-the-secretary"
    assert [unsubscribe.token("piet@example.org", s) for s in unsubscribe.secrets_to_verify(settings, Project(project))] == \
        [sent_before]
    given = parse_settings({"LIST_UNSUBSCRIBE_SECRET": "een-eigen-geheim-van-32-tekens!!"}, {})
    assert unsubscribe.load_secret(given, Project(project)) == "een-eigen-geheim-van-32-tekens!!"


def test_without_an_old_secret_a_new_one_is_made_once_in_the_project(project, tmp_path_factory, monkeypatch):
    profile = tmp_path_factory.mktemp("profile")
    monkeypatch.setenv("XDG_DATA_HOME", str(profile / "data"))
    settings = parse_settings({}, {})
    first = unsubscribe.load_secret(settings, Project(project))
    assert unsubscribe.load_secret(settings, Project(project)) == first and len(first) == 64
    assert (project / "unsubscribe-secret").read_text(encoding="ascii").strip() == first
    assert not (profile / "data").exists()  # nothing written to the user's profile


# --- suppressions.csv --------------------------------------------------------------------------------------------

def test_suppressions_file_is_excel_csv_each_address_once(tmp_path):
    path = tmp_path / "suppressions.csv"
    added = suppressions.add(path, [suppressions.Suppression("Piet@Example.org", "bounced", "2025-10-06", "2025-09",
                                                             "=HYPERLINK(\"x\") 5.1.1\nunknown"),
                                    suppressions.Suppression("piet@example.org", "unsubscribed")])
    assert [a.email for a in added] == ["Piet@Example.org"]
    assert suppressions.add(path, [suppressions.Suppression("PIET@example.org", "requested")]) == []
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfemail;reason;date;edition;detail\r\n")
    assert b'Piet@Example.org;bounced;2025-10-06;2025-09;"\'=HYPERLINK(""x"") 5.1.1 unknown"\r\n' in data  # no formula
    assert read_suppressions(path) == {"piet@example.org"}  # what `newsletter send` reads
    assert suppressions.remove(path, "piet@EXAMPLE.org").reason == "bounced"
    assert suppressions.remove(path, "piet@example.org") is None
    assert read_suppressions(path) == set()


def test_a_hand_made_file_keeps_its_rows_and_columns(tmp_path):
    path = tmp_path / "suppressions.csv"
    path.write_text("E-mail,Opmerking\njan@example.org,belde op 3 okt\n", encoding="utf-8")
    suppressions.add(path, [suppressions.Suppression("kees@example.org", "requested")])
    text = path.read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == "email;reason;date;edition;detail;opmerking"
    assert "jan@example.org;;;;;belde op 3 okt" in text
    assert read_suppressions(path) == {"jan@example.org", "kees@example.org"}


def _add_many(path: str, prefix: str) -> None:
    for i in range(25):
        suppressions.add(Path(path), [suppressions.Suppression(f"{prefix}{i}@example.org", "requested")])


def test_two_writers_at_once_lose_no_line(tmp_path):
    path = tmp_path / "suppressions.csv"
    workers = [Process(target=_add_many, args=(str(path), p)) for p in ("a", "b", "c")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert all(w.exitcode == 0 for w in workers)
    assert len(read_suppressions(path)) == 75
    assert not list(tmp_path.glob(".suppressions.csv.*.tmp"))


def test_a_reply_quoting_the_unsubscribe_link_is_not_a_request_but_words_are():
    quoted = "Dank voor de nieuwsbrief!\n> Meld u af: mailto:afmelden@vzhg.nl?subject=afmelden-" + "a" * 32
    assert not unsubscribe.looks_like_request(quoted)
    assert unsubscribe.looks_like_request("Wilt u mij afmelden voor de nieuwsbrief?")


def test_only_messages_that_may_matter_are_downloaded():
    from newsletter_cli.mailbox.run import worth_reading

    def header(raw: bytes) -> bytes:
        return raw.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"

    assert worth_reading(5000, header(samples.postfix(MEMBER, ORIGINAL)))
    assert worth_reading(5000, header(samples.qmail(MEMBER, ORIGINAL)))
    assert worth_reading(5000, header(samples.unsubscribe(MEMBER, "afmelden-" + "0" * 32)))
    assert worth_reading(5000, header(samples.ordinary("jan@example.org")))  # may ask in words
    assert not worth_reading(5000, header(samples.out_of_office(MEMBER, "x")))
    assert not worth_reading(2_000_000, header(samples.ordinary("jan@example.org")))


def test_a_strangers_subject_cannot_reach_the_terminal_as_escape_codes():
    from newsletter_cli.mailbox.judge import header
    from newsletter_cli.mailbox.mailtext import header as tolerant_header

    msg = email.message_from_bytes(b"Subject: =?utf-8?q?Graag_afmelden=1B[2J=07?=\r\n\r\nx")
    assert header(msg, "Subject") == "Graag afmelden [2J"
    assert tolerant_header(msg, "Subject") == "Graag afmelden [2J"
