"""Messages as they arrive in the secretariat's mailbox after a send, written for the tests from RFC 3464
(delivery status notifications), RFC 3834 (auto-replies) and the public descriptions of what Exchange
Online, Gmail, Postfix and qmail send. Each function returns the raw bytes to APPEND."""

from __future__ import annotations

DATE = "Mon, 06 Oct 2025 09:15:02 +0000"
SENDER = "nieuwsbrief@vzhg.nl"


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def _headers_of(original: bytes) -> str:
    return original.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")


def exchange_online(member: str, original: bytes) -> bytes:
    """Exchange Online's NDR: multipart/report, a friendly text+HTML part, the DSN, the original headers."""
    return _crlf(f"""\
From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@vzhg.onmicrosoft.com>
To: <{SENDER}>
Date: {DATE}
Subject: Undeliverable: Nieuwsbrief VZHG - september 2025
Message-ID: <b1c0a2e3-ndr-exo@AM0PR04MB1234.eurprd04.prod.outlook.com>
Content-Language: en-US
X-MS-Exchange-Message-Is-Ndr:
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="_000_ndr_exo_"

--_000_ndr_exo_
Content-Type: multipart/alternative; boundary="_001_ndr_exo_"

--_001_ndr_exo_
Content-Type: text/plain; charset="us-ascii"

Your message to {member} couldn't be delivered.
{member.split('@')[0]} wasn't found at {member.split('@')[1]}.
Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'

--_001_ndr_exo_
Content-Type: text/html; charset="us-ascii"

<html><body><p>Your message to {member} couldn't be delivered.</p></body></html>

--_001_ndr_exo_--

--_000_ndr_exo_
Content-Type: message/delivery-status

Reporting-MTA: dns;AM0PR04MB1234.eurprd04.prod.outlook.com
Received-From-MTA: dns;smtp.vzhg.nl
Arrival-Date: {DATE}

Final-Recipient: rfc822;{member}
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by
 SMTP address lookup
Remote-MTA: dns;mx.{member.split('@')[1]}
X-Display-Name: {member}

--_000_ndr_exo_
Content-Type: text/rfc822-headers

{_headers_of(original)}

--_000_ndr_exo_--
""")


def gmail_mailbox_full(member: str, original: bytes) -> bytes:
    """Gmail's 'Delivery Status Notification (Failure)' for a full mailbox: 5.2.2, temporary by nature."""
    return _crlf(f"""\
Return-Path: <>
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: {SENDER}
Date: {DATE}
Subject: Delivery Status Notification (Failure)
Message-ID: <5f8a1c.gmail-dsn@mx.google.com>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000gmail"; report-type=delivery-status

--000000000000gmail
Content-Type: multipart/related; boundary="000000000000gmailrel"

--000000000000gmailrel
Content-Type: text/html; charset="UTF-8"

<html><body><h2>Address not available</h2><p>Your message wasn't delivered to <a>{member}</a>
because the mailbox is full.</p></body></html>

--000000000000gmailrel--

--000000000000gmail
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; smtp.vzhg.nl
Arrival-Date: {DATE}

Final-Recipient: rfc822; {member}
Action: failed
Status: 5.2.2
Remote-MTA: dns; gmail-smtp-in.l.google.com. (2a00:1450:400c:c0b::1b, the server for the domain gmail.com.)
Diagnostic-Code: smtp; 552-5.2.2 The recipient's inbox is out of storage space. Please direct the recipient to
 552 5.2.2  https://support.google.com/mail/?p=OverQuotaPerm a1si123.456 - gsmtp
Last-Attempt-Date: {DATE}

--000000000000gmail
Content-Type: message/rfc822

{original.decode('ascii', 'replace').replace(chr(13), '')}
--000000000000gmail--
""")


def postfix(member: str, original: bytes) -> bytes:
    """Postfix's 'Undelivered Mail Returned to Sender' with the whole original attached."""
    return _crlf(f"""\
Return-Path: <>
From: MAILER-DAEMON@mail.example.org (Mail Delivery System)
To: {SENDER}
Date: {DATE}
Subject: Undelivered Mail Returned to Sender
Message-Id: <20251006091502.4B2C31E0@mail.example.org>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4B2C31E0.1759741502/mail.example.org"

This is a MIME-encapsulated message.

--4B2C31E0.1759741502/mail.example.org
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mail.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<{member}>: host mx.example.org[192.0.2.7] said: 550 5.1.1
    <{member}>: Recipient address rejected: User unknown in local recipient table
    (in reply to RCPT TO command)

--4B2C31E0.1759741502/mail.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.org
X-Postfix-Queue-ID: 4B2C31E0
X-Postfix-Sender: rfc822; {SENDER}
Arrival-Date: {DATE}

Final-Recipient: rfc822; {member}
Original-Recipient: rfc822;{member}
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; 550 5.1.1 <{member}>: Recipient address rejected: User
    unknown in local recipient table

--4B2C31E0.1759741502/mail.example.org
Content-Description: Undelivered Message
Content-Type: message/rfc822

{original.decode('ascii', 'replace').replace(chr(13), '')}
--4B2C31E0.1759741502/mail.example.org--
""")


def qmail(member: str, original: bytes) -> bytes:
    """qmail's plain-text bounce (no RFC 3464 at all), the original pasted below a line."""
    return _crlf(f"""\
Return-Path: <>
From: MAILER-DAEMON@oldhost.example.net
To: {SENDER}
Date: {DATE}
Subject: failure notice
Message-ID: <1759741502.qmail@oldhost.example.net>

Hi. This is the qmail-send program at oldhost.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{member}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

{original.decode('ascii', 'replace').replace(chr(13), '')}
""")


def unsubscribe(member: str, subject: str, body: str = "") -> bytes:
    """What a mail program sends for a List-Unsubscribe mailto (or a member writes by hand)."""
    return _crlf(f"""\
From: {member}
To: afmelden@vzhg.nl
Date: {DATE}
Subject: {subject}
Message-ID: <{abs(hash((member, subject)))}@mail.example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

{body or 'This message was sent automatically to unsubscribe.'}
""")


def out_of_office(member: str, original_subject: str) -> bytes:
    return _crlf(f"""\
From: {member}
To: {SENDER}
Date: {DATE}
Subject: Automatisch antwoord: {original_subject}
Message-ID: <ooo.{abs(hash(member))}@mail.example.org>
Auto-Submitted: auto-replied
X-Auto-Response-Suppress: All
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Ik ben tot en met 20 oktober afwezig. Voor dringende zaken: bel 030-1234567.
""")


def ordinary(sender: str) -> bytes:
    return _crlf(f"""\
From: Gemeente Voorbeeld <{sender}>
To: {SENDER}
Date: {DATE}
Subject: Vraag over het najaarscongres
Message-ID: <vraag.1@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Kunnen wij met vier personen komen? Met vriendelijke groet, Jan
""")


def malformed() -> bytes:
    """A 'delivery report' whose MIME is broken: the boundary is declared but never appears."""
    return _crlf(f"""\
Return-Path: <>
From: MAILER-DAEMON@broken.example.com
To: {SENDER}
Date: {DATE}
Subject: Undelivered Mail Returned to Sender
Message-ID: <broken.1@broken.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="never-used"
Content-Transfer-Encoding: base64

=?!?this is not base64 and there are no parts!!
""")


def huge(size: int = 20_000_000) -> bytes:
    """A 20 MB message (a scan of the annual report, say)."""
    head = _crlf(f"""\
From: Penningmeester <penningmeester@example.org>
To: {SENDER}
Date: {DATE}
Subject: Jaarverslag (scan)
Message-ID: <huge.1@example.org>
MIME-Version: 1.0
Content-Type: application/pdf; name="jaarverslag.pdf"
Content-Transfer-Encoding: base64

""")
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3\r\n"
    return head + line * (size // len(line))
