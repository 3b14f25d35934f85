"""`newsletter doctor`'s checks of the sending domain, against a real DNS server on 127.0.0.1 (dnslib)."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from newsletter_cli.cli import cli
from newsletter_cli.deliver.domain import Lookup, check_domain
from newsletter_cli.settings import parse_settings

from dns_server import GOOD_ZONE, DnsServer

M365 = "spf.protection.outlook.com"
ZONE = GOOD_ZONE + """
bad.example.                        300 IN MX    0 bad-example.mail.protection.outlook.com.
bad.example.                        300 IN TXT   "v=spf1 mx -all"
bad.example.                        300 IN TXT   "google-site-verification=abc"
selector1._domainkey.bad.example.   300 IN CNAME selector1-bad-example._domainkey.bad.onmicrosoft.com.
selector1-bad-example._domainkey.bad.onmicrosoft.com. 300 IN TXT "v=DKIM1; k=rsa; p=MIIBIjAN"
_dmarc.bad.example.                 300 IN TXT   "v=DMARC1; p=none; rua=mailto:rapport@bad.example"
nested.example.                     300 IN MX    10 nested-example.mail.protection.outlook.com.
nested.example.                     300 IN TXT   "v=spf1 include:_spf.nested.example ~all"
_spf.nested.example.                300 IN TXT   "v=spf1 ip4:192.0.2.0/24 include:spf.protection.outlook.com -all"
bare.example.                       300 IN A     192.0.2.10
two.example.                        300 IN TXT   "v=spf1 -all"
two.example.                        300 IN TXT   "v=spf1 include:spf.protection.outlook.com -all"
relay.example.                      300 IN TXT   "v=spf1 ip4:127.0.0.0/8 -all"
_dmarc.relay.example.               300 IN TXT   "v=DMARC1; p=reject"
"""


@pytest.fixture(scope="module")
def dns():
    with DnsServer(ZONE) as server:
        yield server


def findings(dns: DnsServer, sender: str, **extra: str) -> list[tuple[str, str]]:
    settings = parse_settings({"NEWSLETTER_FROM": sender, "DNS_SERVER": f"127.0.0.1:{dns.port}", **extra}, {})
    return [(f.level, f.text) for f in check_domain(settings)]


def test_a_domain_set_up_for_microsoft_365_passes(dns):
    found = findings(dns, "VZHG <nieuwsbrief@vzhg.nl>", SMTP_HOST="smtp.office365.com")
    assert [level for level, _ in found] == ["ok"] * 6, found
    text = "\n".join(t for _, t in found)
    assert "covers Microsoft 365" in text and "selector2._domainkey.vzhg.nl: CNAME" in text
    assert "policy quarantine" in text and "MX vzhg.nl: vzhg-nl.mail.protection.outlook.com" in text


def test_missing_spf_include_dkim_selector_and_dmarc_none_name_the_records_to_add(dns):
    found = findings(dns, "nieuwsbrief@bad.example", SMTP_HOST="smtp.office365.com")
    by_start = {text.split(":")[0]: (level, text) for level, text in found}
    assert by_start["SPF bad.example"][0] == "error"
    assert f"change the TXT record on bad.example to:  v=spf1 mx include:{M365} -all" in by_start["SPF bad.example"][1]
    assert by_start["DKIM selector1._domainkey.bad.example"][0] == "ok"
    level, text = by_start["DKIM selector2._domainkey.bad.example"]
    assert level == "error" and "selector2._domainkey.bad.example CNAME selector2-bad-example._domainkey." in text
    level, text = by_start["DMARC _dmarc.bad.example"]
    assert level == "warning" and "v=DMARC1; p=quarantine; rua=mailto:rapport@bad.example" in text
    assert by_start["DMARC alignment"][0] == "warning"  # DKIM incomplete: Microsoft signs as onmicrosoft.com


def test_spf_through_a_nested_include_two_records_and_none(dns):
    nested = findings(dns, "a@nested.example")
    assert nested[1] == ("ok", "SPF nested.example: 'v=spf1 include:_spf.nested.example ~all' covers Microsoft 365")
    two = findings(dns, "a@two.example", SMTP_HOST="smtp.office365.com")
    assert two[1][0] == "error" and "2 SPF records" in two[1][1]
    bare = findings(dns, "a@bare.example", SMTP_HOST="smtp.office365.com")
    assert bare[0][0] == "warning" and "MX 0 bare-example.mail.protection.outlook.com" in bare[0][1]
    assert bare[1] == ("error", ("SPF bare.example: no SPF record (Gmail, Yahoo and Outlook.com require it of bulk "
                                 "senders). Ask your domain's admin for this TXT record on bare.example:  v=spf1 "
                                 f"include:{M365} -all"))
    assert any(level == "error" and "_dmarc.bare.example:  v=DMARC1; p=none; rua=mailto:dmarc@bare.example" in text
               for level, text in bare)


def test_another_smtp_service_is_checked_by_its_addresses(dns):
    found = findings(dns, "a@relay.example", SMTP_HOST="127.0.0.1")
    assert found[1] == ("ok", "SPF relay.example: 'v=spf1 ip4:127.0.0.0/8 -all' covers 127.0.0.1")
    assert "not checked" in found[2][1] and found[3][0] == "ok"  # no DKIM selector to guess; DMARC reject


def test_unknown_domain(dns):
    assert findings(dns, "a@nowhere.example")[0] == (
        "error", "nowhere.example: this domain does not exist in DNS. Check NEWSLETTER_FROM.")


def test_offline_skips_with_a_note():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # a "DNS server" that never answers
        silent.bind(("127.0.0.1", 0))
        settings = parse_settings({"NEWSLETTER_FROM": "a@vzhg.nl",
                                   "DNS_SERVER": f"127.0.0.1:{silent.getsockname()[1]}"}, {})
        found = check_domain(settings, Lookup(settings, timeout=0.3))
    assert len(found) == 1 and found[0].level == "ok" and "DNS checks of vzhg.nl skipped" in found[0].text


def test_doctor_command_shows_the_domain_findings(project, dns, monkeypatch):
    monkeypatch.setenv("DNS_SERVER", f"127.0.0.1:{dns.port}")
    (project / ".env").write_text("NEWSLETTER_FROM=VZHG <nieuwsbrief@bad.example>\nSMTP_HOST=\n")
    result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(line.startswith("FAILED  SPF bad.example:") and f"include:{M365}" in line for line in lines)
    assert any(line.startswith("FAILED  DKIM selector2._domainkey.bad.example:") for line in lines)
    assert any(line.startswith("WARN    DMARC _dmarc.bad.example:") and "p=quarantine" in line for line in lines)
    assert any(line.startswith("ok      DKIM selector1._domainkey.bad.example:") for line in lines)
    quiet = CliRunner().invoke(cli, ["doctor", "--no-dns"])
    assert "SPF" not in quiet.output


@pytest.mark.parametrize("value, expected", [("127.0.0.1:5353", ("127.0.0.1", 5353)), ("192.168.1.1", ("192.168.1.1", 53)),
                                             ("[::1]:5353", ("::1", 5353)), ("::1", ("::1", 53))])
def test_dns_server_setting(value, expected):
    assert parse_settings({"DNS_SERVER": value}, {}).dns_server == expected


@pytest.mark.parametrize("value", ["dns.example", "127.0.0.1:0", "1.2.3.4:99999", "localhost:53"])
def test_bad_dns_server_setting(value):
    from newsletter_cli.errors import InputError

    with pytest.raises(InputError, match="DNS_SERVER"):
        parse_settings({"DNS_SERVER": value}, {})
