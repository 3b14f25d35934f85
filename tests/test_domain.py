"""`newsletter doctor`'s checks of the sending domain, against a real DNS server on 127.0.0.1 (dnslib)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from newsletter_cli.account.domain import check_domain
from newsletter_cli.cli import cli
from newsletter_cli.settings import parse_settings

from dns_server import GOOD_ZONE, DnsServer, silent_server

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
l1.s.example.  300 IN TXT   "v=spf1 ip4:192.0.2.1 -all"
l2.s.example.  300 IN TXT   "v=spf1 ip4:192.0.2.2 -all"
l3.s.example.  300 IN TXT   "v=spf1 ip4:192.0.2.3 -all"
l4.s.example.  300 IN TXT   "v=spf1 ip4:192.0.2.4 -all"
l5.s.example.  300 IN TXT   "v=spf1 ip4:192.0.2.5 -all"
l6.s.example.  300 IN TXT   "v=spf1 ip4:192.0.2.6 -all"
l7.s.example.  300 IN TXT   "v=spf1 ip4:192.0.2.7 -all"
l8.s.example.  300 IN TXT   "v=spf1 ip4:192.0.2.8 -all"
l9.s.example.  300 IN TXT   "v=spf1 ip4:192.0.2.9 -all"
l10.s.example.  300 IN TXT   "v=spf1 ip4:192.0.2.10 -all"
ten.example.     300 IN MX    0 ten-example.mail.protection.outlook.com.
ten.example.     300 IN TXT   "v=spf1 include:l1.s.example include:l2.s.example include:l3.s.example include:l4.s.example include:l5.s.example include:l6.s.example include:l7.s.example include:l8.s.example include:l9.s.example" " include:spf.protection.outlook.com -all"
eleven.example.  300 IN MX    0 eleven-example.mail.protection.outlook.com.
eleven.example.  300 IN TXT   "v=spf1 include:l1.s.example include:l2.s.example include:l3.s.example include:l4.s.example include:l5.s.example include:l6.s.example include:l7.s.example include:l8.s.example include:l9.s.example include:l10.s.example" " include:spf.protection.outlook.com -all"
twelve.example.  300 IN MX    0 twelve-example.mail.protection.outlook.com.
twelve.example.  300 IN TXT   "v=spf1 include:_n.twelve.example include:spf.protection.outlook.com -all"
_n.twelve.example. 300 IN TXT "v=spf1 include:l1.s.example include:l2.s.example include:l3.s.example include:l4.s.example include:l5.s.example include:l6.s.example include:l7.s.example include:l8.s.example include:l9.s.example include:l10.s.example -all"
twodmarc.example. 300 IN MX   0 twodmarc-example.mail.protection.outlook.com.
twodmarc.example. 300 IN TXT  "v=spf1 include:spf.protection.outlook.com -all"
_dmarc.twodmarc.example. 300 IN TXT "v=DMARC1; p=quarantine"
_dmarc.twodmarc.example. 300 IN TXT "v=DMARC1; p=none; rua=mailto:d@twodmarc.example"
twospf.example.  300 IN MX    0 twospf-example.mail.protection.outlook.com.
twospf.example.  300 IN TXT   "v=spf1 include:_spf.google.com ip4:198.51.100.7 ~all"
twospf.example.  300 IN TXT   "v=spf1 include:spf.protection.outlook.com -all"
newdkim.example. 300 IN MX    0 newdkim-example.mail.protection.outlook.com.
selector1._domainkey.newdkim.example. 300 IN CNAME selector1-newdkim-example._domainkey.newdkim.n-v1.dkim.mail.microsoft.
selector2._domainkey.newdkim.example. 300 IN CNAME selector2-newdkim-example._domainkey.newdkim.n-v1.dkim.mail.microsoft.
selector1-newdkim-example._domainkey.newdkim.n-v1.dkim.mail.microsoft. 300 IN TXT "v=DKIM1; k=rsa; p=MIIBIjAN1"
selector2-newdkim-example._domainkey.newdkim.n-v1.dkim.mail.microsoft. 300 IN TXT "v=DKIM1; k=rsa; p=MIIBIjAN2"
typo.example.    300 IN MX    0 typo-example.mail.protection.outlook.com.
selector1._domainkey.typo.example. 300 IN CNAME selector1-typo-example._domainkey.typpo.onmicrosoft.com.
selector2._domainkey.typo.example. 300 IN CNAME selector2-typo-example._domainkey.typo.onmicrosoft.com.
other._domainkey.typo.onmicrosoft.com. 300 IN TXT "v=DKIM1; p=MIIB"
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
    assert nested[1] == ("ok", "SPF nested.example: 'v=spf1 include:_spf.nested.example ~all' covers Microsoft 365 "
                               "(2 of 10 DNS lookups)")
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


def by_name(found: list[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    return {text.split(":")[0]: (level, text) for level, text in found}


def test_spf_lookups_are_counted_over_the_whole_include_tree(dns):
    """RFC 7208 4.6.4: 10 DNS-querying terms at most, includes' own terms counted; the 11th is a permerror."""
    ten = by_name(findings(dns, "a@ten.example"))["SPF ten.example"]
    assert ten[0] == "ok" and "(10 of 10 DNS lookups)" in ten[1]
    level, text = by_name(findings(dns, "a@eleven.example"))["SPF eleven.example"]
    assert level == "error" and "needs 11 DNS lookups" in text and "RFC 7208 allows 10" in text
    assert "Microsoft 365's include comes at lookup 11, after the limit" in text
    level, text = by_name(findings(dns, "a@twelve.example"))["SPF twelve.example"]
    assert level == "error" and "needs 12 DNS lookups" in text and "comes at lookup 12" in text


def test_several_spf_or_dmarc_records(dns):
    level, text = by_name(findings(dns, "a@twospf.example"))["SPF twospf.example"]
    assert level == "error" and "2 SPF records" in text  # the advice keeps the other record's include and ip4
    assert text.endswith("v=spf1 include:_spf.google.com ip4:198.51.100.7 include:spf.protection.outlook.com ~all")
    level, text = by_name(findings(dns, "a@twodmarc.example"))["DMARC _dmarc.twodmarc.example"]
    assert level == "error" and "2 DMARC records" in text and "no policy at all (RFC 7489 6.6.3)" in text
    assert not any("policy quarantine" in t for _, t in findings(dns, "a@twodmarc.example"))


def test_dkim_in_microsofts_new_form_and_a_mistyped_tenant(dns):
    new = by_name(findings(dns, "a@newdkim.example"))
    assert new["DKIM selector1._domainkey.newdkim.example"][0] == "ok"
    assert new["DKIM selector2._domainkey.newdkim.example"][0] == "ok"
    typo = by_name(findings(dns, "a@typo.example"))
    level, text = typo["DKIM selector1._domainkey.typo.example"]
    assert level == "error" and "typpo.onmicrosoft.com does not exist: a typing error in the tenant's name. " in text
    assert "switch DKIM" not in text
    level, text = typo["DKIM selector2._domainkey.typo.example"]  # the tenant exists, the key is not published yet
    assert level == "warning" and "switch DKIM signing on" in text


def test_servfail_and_a_silent_server_are_not_ok():
    with DnsServer(GOOD_ZONE, servfail={"*"}) as broken:
        found = findings(broken, "a@vzhg.nl")
        assert [level for level, _ in found] == ["unknown"]
        assert f"the DNS server in DNS_SERVER (127.0.0.1:{broken.port}) answered SERVFAIL" in found[0][1]
    with DnsServer(GOOD_ZONE, servfail={"_dmarc.vzhg.nl"}) as partly:  # what was answered is still reported
        found = findings(partly, "a@vzhg.nl")
        assert [level for level, _ in found][-1] == "unknown" and found[1][0] == "ok" and "_dmarc.vzhg.nl" in found[-1][1]
    with silent_server() as port:  # the library reads no environment: cli.py passes NEWSLETTER_DNS_TIMEOUT
        settings = parse_settings({"NEWSLETTER_FROM": "a@vzhg.nl", "DNS_SERVER": f"127.0.0.1:{port}"}, {})
        (finding,) = check_domain(settings, timeout=0.3)
    assert finding.level == "unknown" and "did not answer within 0.3 seconds" in finding.text
    assert f"DNS_SERVER (127.0.0.1:{port})" in finding.text


def test_doctor_exits_non_zero_when_dns_does_not_answer(project, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_DNS_TIMEOUT", "0.3")
    (project / ".env").write_text("NEWSLETTER_FROM=VZHG <nieuwsbrief@vzhg.nl>\nSMTP_HOST=\n")
    with silent_server() as port:
        monkeypatch.setenv("DNS_SERVER", f"127.0.0.1:{port}")
        result = CliRunner().invoke(cli, ["doctor"])
    assert result.exit_code == 1 and "skipped" not in result.output
    assert any(line.startswith("WARN    DNS checks of vzhg.nl not finished") and "DNS_SERVER" in line
               for line in result.output.splitlines()), result.output


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


@pytest.mark.parametrize("domain", ["vzhg.nl", "nested.example", "ten.example", "eleven.example", "twelve.example",
                                    "two.example", "twospf.example", "twodmarc.example", "relay.example"])
def test_verdicts_agree_with_checkdmarc_on_the_same_dns_server(dns, domain):
    """checkdmarc (Apache-2.0, a reference implementation of RFC 7208/7489 checks) asked the same DNS server:
    where it calls the SPF or DMARC record invalid, doctor says error, and where it calls it valid, doctor does
    not (for records that include Microsoft 365, so that only the RFC decides)."""
    import warnings

    from dns.resolver import Resolver

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dnspython's DNSSEC module warns about DSA on import
        import checkdmarc.dmarc
        import checkdmarc.spf
        import checkdmarc.utils

    checkdmarc.utils.DNS_CACHE.clear()
    resolver = Resolver(configure=False)
    resolver.nameservers, resolver.port, resolver.lifetime = ["127.0.0.1"], dns.port, 2.0
    spf_valid = checkdmarc.spf.check_spf(domain, resolver=resolver)["valid"]
    dmarc = checkdmarc.dmarc.check_dmarc(domain, resolver=resolver)
    host = "127.0.0.1" if domain == "relay.example" else "smtp.office365.com"  # relay.example: ip4 of this host
    ours = by_name(findings(dns, f"a@{domain}", SMTP_HOST=host))
    assert (ours[f"SPF {domain}"][0] == "error") == (not spf_valid), (ours[f"SPF {domain}"], spf_valid)
    dmarc_level = next((level for name, (level, _) in ours.items() if name.startswith("DMARC _dmarc")), None)
    if dmarc.get("record") or "Multiple" in str(dmarc.get("error", "")):
        assert (dmarc_level == "error") == (not dmarc["valid"]), (dmarc_level, dmarc)
