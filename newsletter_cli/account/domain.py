"""The sending domain's DNS, as Gmail, Yahoo and Outlook.com judge it: SPF, DKIM, DMARC and MX (dnspython).

Since 2024 (Gmail, Yahoo) and 2025 (Outlook.com) a bulk sender must pass SPF and DKIM, publish DMARC
(p=none at least) aligned with the From domain, and offer one-click unsubscribe; without them a newsletter
goes to spam or is refused. Every finding says what is fine or what record to ask the domain's admin for.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

import dns.exception
import dns.name
import dns.resolver

from newsletter_cli.account import spf
from newsletter_cli.settings import Settings

M365_SPF = "spf.protection.outlook.com"
M365_HOSTS = re.compile(r"(^|\.)(office365\.com|outlook\.com|office\.com)$", re.IGNORECASE)
PLUS_ALL = re.compile(r"(^|\s)\+?all\b", re.IGNORECASE)
BULK = "Gmail, Yahoo and Outlook.com require it of bulk senders"
DNS_TIMEOUT = 5.0  # seconds to wait for the DNS server; the caller may shorten it (cli.py: NEWSLETTER_DNS_TIMEOUT)
Level = Literal["ok", "warning", "error", "unknown"]  # unknown: could not be checked (no DNS answer)


@dataclass(frozen=True)
class Finding:
    level: Level
    text: str


class Offline(Exception):
    """The DNS server did not answer, or answered SERVFAIL: what could not be checked is not ok, and not wrong."""


class Lookup:
    """Answers from the resolver in DNS_SERVER (or the system's), '' and [] for names that do not exist."""

    def __init__(self, settings: Settings, timeout: float = DNS_TIMEOUT):
        self.server = (f"the DNS server in DNS_SERVER ({settings.dns_server[0]}:{settings.dns_server[1]})"
                       if settings.dns_server else "this computer's DNS server")
        self.way_out = ("Check that it is running and answers, or set DNS_SERVER to another (e.g. 1.1.1.1)"
                        if settings.dns_server else "Check the internet connection, or set DNS_SERVER to another "
                        "DNS server (e.g. 1.1.1.1)")
        try:
            self.resolver = dns.resolver.Resolver(configure=settings.dns_server is None)
        except dns.resolver.NoResolverConfiguration:
            raise Offline("this computer has no DNS server configured. Set DNS_SERVER (e.g. 1.1.1.1)") from None
        if settings.dns_server is not None:
            self.resolver.nameservers = [settings.dns_server[0]]
            self.resolver.port = settings.dns_server[1]
        self.resolver.lifetime = timeout

    def _answer(self, name: str, kind: str) -> list[str]:
        try:
            answer = self.resolver.resolve(name, kind)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.name.EmptyLabel, dns.name.LabelTooLong):
            return []
        except dns.resolver.NoNameservers:
            raise Offline(f"{self.server} answered SERVFAIL (it could not find out) for {name} {kind}. "
                          f"{self.way_out}") from None
        except dns.exception.Timeout:
            raise Offline(f"{self.server} did not answer within {self.resolver.lifetime:g} seconds ({name} {kind}). "
                          f"{self.way_out}") from None
        if kind == "TXT":
            return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
        if kind == "MX":
            return [str(r.exchange).rstrip(".").lower() for r in answer]
        if kind == "CNAME":
            return [str(r.target).rstrip(".").lower() for r in answer]
        return [r.to_text() for r in answer]

    def txt(self, name: str, prefix: str) -> list[str]:
        return [t for t in self._answer(name, "TXT") if t.lower().startswith(prefix.lower())]

    def mx(self, name: str) -> list[str]:
        return self._answer(name, "MX")

    def cname(self, name: str) -> str | None:
        found = self._answer(name, "CNAME")
        return found[0] if found else None

    def exists(self, name: str) -> bool:
        """Whether the name exists in DNS at all (NXDOMAIN: no; a name with no records of its own: yes)."""
        try:
            self.resolver.resolve(name, "TXT")
        except dns.resolver.NXDOMAIN:
            return False
        except dns.resolver.NoAnswer:
            return True
        except dns.resolver.NoNameservers:
            raise Offline(f"{self.server} answered SERVFAIL for {name}. {self.way_out}") from None
        except dns.exception.Timeout:
            raise Offline(f"{self.server} did not answer ({name}). {self.way_out}") from None
        return True

    def addresses(self, name: str) -> list[str]:
        try:
            return [str(ipaddress.ip_address(name))]
        except ValueError:
            return self._answer(name, "A") + self._answer(name, "AAAA")


def uses_microsoft(settings: Settings, mx: list[str]) -> bool:
    """Whether the mail goes out through Microsoft 365: its SMTP host, an Entra app, or the domain's MX."""
    return bool(M365_HOSTS.search(settings.smtp_host or "") or settings.oauth_client_id
                or any(host.endswith(".mail.protection.outlook.com") for host in mx))


def check_domain(settings: Settings, lookup: Lookup | None = None, timeout: float = DNS_TIMEOUT) -> list[Finding]:
    """The findings for NEWSLETTER_FROM's domain; what DNS did not answer ends in one 'unknown' finding."""
    domain = settings.from_address.rpartition("@")[2].lower()
    if not domain:
        return []
    findings: list[Finding] = []
    try:
        lookup = lookup or Lookup(settings, timeout)
        mx = lookup.mx(domain)
        microsoft = uses_microsoft(settings, mx)
        findings += [_mx(domain, mx, lookup)]
        findings += [_spf(domain, settings, lookup, microsoft)]
        dkim = _dkim(domain, settings, lookup, microsoft)
        findings += dkim
        findings += _dmarc(domain, lookup, microsoft, all(f.level == "ok" for f in dkim))
    except Offline as exc:
        findings.append(Finding("unknown", f"DNS checks of {domain} not finished: {exc}. The rest of the domain's "
                                           "records could not be checked, so they are not known to be right."))
    return findings


def _mx(domain: str, mx: list[str], lookup: Lookup) -> Finding:
    if mx:
        return Finding("ok", f"MX {domain}: {', '.join(mx)} (replies and bounces can arrive)")
    if lookup.addresses(domain) or lookup.txt(domain, "v=spf1"):
        return Finding("warning", f"MX {domain}: none, so nobody can reply to the newsletter's address and some "
                                  f"receivers distrust it. Ask for the MX record of your mail service (Microsoft 365: "
                                  f"{domain} MX 0 {domain.replace('.', '-')}.mail.protection.outlook.com).")
    return Finding("error", f"{domain}: this domain does not exist in DNS. Check NEWSLETTER_FROM.")


def _spf(domain: str, settings: Settings, lookup: Lookup, microsoft: bool) -> Finding:
    found = spf.records(lookup, domain)
    include = M365_SPF if microsoft else None
    suggestion = f"v=spf1 include:{M365_SPF} -all" if microsoft else "v=spf1 include:<your mail service> -all"
    if not found:
        return Finding("error", f"SPF {domain}: no SPF record ({BULK}). Ask your domain's admin for this TXT "
                                f"record on {domain}:  {suggestion}")
    if len(found) > 1:
        return Finding("error", f"SPF {domain}: {len(found)} SPF records ({' | '.join(found)}); receivers then ignore "
                                "them all (RFC 7208 4.5: permerror). Ask your domain's admin to replace them by one "
                                f"TXT record that keeps all their parts:  {spf.merged(found, include)}")
    record = found[0]
    if PLUS_ALL.search(record):
        fixed = spf.merged([PLUS_ALL.sub(" ", record)], include)
        return Finding("error", f"SPF {domain}: '{record}' ends in +all: anyone may send as {domain}. Ask for  "
                                f"{fixed}")
    host = settings.smtp_host
    addresses = lookup.addresses(host) if host and not microsoft else []
    walked = spf.walk(record, lookup, include or "", addresses)
    if walked.lookups > spf.MAX_LOOKUPS:
        late = (f" Microsoft 365's include comes at lookup {walked.include_at}, after the limit, so mail sent "
                "through Microsoft 365 fails SPF." if microsoft and (walked.include_at or 99) > spf.MAX_LOOKUPS else "")
        return Finding("error", f"SPF {domain}: '{record}' needs {walked.lookups} DNS lookups (includes, a, mx, "
                                f"exists, redirect, also inside the includes); RFC 7208 allows {spf.MAX_LOOKUPS}, and "
                                f"receivers treat the record as broken (permerror).{late} Ask your domain's admin to "
                                "remove the includes of services that no longer send for the domain, or replace "
                                "a and mx by ip4: terms, until 10 lookups are left.")
    if walked.broken:
        return Finding("error", f"SPF {domain}: '{record}' includes {', '.join(walked.broken)}, which has no single "
                                "SPF record: receivers treat the whole record as broken (permerror). Ask your "
                                "domain's admin to fix or remove that include.")
    if microsoft:
        if walked.include_at is None:
            return Finding("error", f"SPF {domain}: '{record}' does not include Microsoft 365 ({M365_SPF}), so "
                                    f"mail sent through Microsoft 365 fails SPF ({BULK}). Ask your domain's admin to "
                                    f"change the TXT record on {domain} to:  {spf.merged([record], include)}")
        return Finding("ok", f"SPF {domain}: '{record}' covers Microsoft 365 ({walked.lookups} of "
                             f"{spf.MAX_LOOKUPS} DNS lookups)")
    if host and walked.covers_address:
        return Finding("ok", f"SPF {domain}: '{record}' covers {host}")
    return Finding("warning", f"SPF {domain}: '{record}'; could not confirm that it covers "
                              f"{host or 'the SMTP server'} (your mail service names the include to add)")


def _dkim(domain: str, settings: Settings, lookup: Lookup, microsoft: bool) -> list[Finding]:
    """Microsoft 365's two selectors: CNAMEs to its key records, in the old form (…._domainkey.<tenant>.onmicrosoft.com)
    or the new one of 2025 (…._domainkey.<tenant>.<partition>.dkim.mail.microsoft)."""
    if not microsoft:
        return [Finding("ok", f"DKIM {domain}: not checked (the selector depends on your mail service; {BULK}: ask "
                              "your mail service how to switch DKIM signing on for your domain)")]
    tenant = settings.oauth_tenant or ""
    initial = tenant if tenant.endswith(".onmicrosoft.com") else "<your tenant>.onmicrosoft.com"
    out = []
    for selector in ("selector1", "selector2"):
        name = f"{selector}._domainkey.{domain}"
        target = lookup.cname(name)
        prefix = f"{selector}-{domain.replace('.', '-')}._domainkey."
        expected = prefix + initial
        defender = ("In Microsoft Defender (Email & collaboration > Policies > Email authentication settings > "
                    "DKIM) select the domain; it shows the exact records.")
        if target is None:
            out.append(Finding("error", f"DKIM {name}: no CNAME record, so Microsoft 365 cannot sign with {domain} "
                                        f"and DMARC fails ({BULK}). {defender} Ask your domain's admin for:  {name} "
                                        f"CNAME {expected}  (or the newer form Defender shows, ending in "
                                        ".dkim.mail.microsoft) and then switch DKIM signing on there."))
            continue
        new_form = target.endswith(".dkim.mail.microsoft")
        if not target.startswith(prefix) or not (new_form or target.endswith(".onmicrosoft.com")):
            out.append(Finding("error", f"DKIM {name}: CNAME to {target}, which is not Microsoft 365's form "
                                        f"({prefix}<tenant>.onmicrosoft.com, or …dkim.mail.microsoft). {defender} "
                                        "Ask your domain's admin to copy those values exactly."))
        elif lookup.txt(target, "v=DKIM1") or any("p=" in t for t in lookup.txt(target, "")):
            out.append(Finding("ok", f"DKIM {name}: CNAME to {target}"))
        elif not lookup.exists(tenant_part := target.split("._domainkey.", 1)[1]):
            sure = not new_form  # every tenant's onmicrosoft.com name exists; the new form's only with DKIM on
            out.append(Finding("error", f"DKIM {name}: CNAME to {target}, but {tenant_part} does not exist: "
                                        + ("a typing error in the tenant's name. " if sure else
                                           "a typing error in the tenant's name, or DKIM is not switched on yet. ")
                                        + defender + " Ask your domain's admin to copy the value exactly."))
        else:
            out.append(Finding("warning", f"DKIM {name}: CNAME to {target}, which has no key yet: switch DKIM signing "
                                          f"on for {domain} in Microsoft Defender (it publishes the key)."))
    return out


def _dmarc(domain: str, lookup: Lookup, microsoft: bool, dkim_ok: bool) -> list[Finding]:
    name, records = f"_dmarc.{domain}", lookup.txt(f"_dmarc.{domain}", "v=DMARC1")
    parent = domain.split(".", 1)[1] if domain.count(".") > 1 else None
    if not records and parent:  # a subdomain falls under its organisation's policy
        name, records = f"_dmarc.{parent}", lookup.txt(f"_dmarc.{parent}", "v=DMARC1")
    report = f"rua=mailto:dmarc@{parent or domain}"
    if len(records) > 1:
        return [Finding("error", f"DMARC {name}: {len(records)} DMARC records ({' | '.join(records)}); receivers then "
                                 "apply no policy at all (RFC 7489 6.6.3). Ask your domain's admin to remove all but "
                                 f"one, e.g. keep  {records[0]}")]
    if not records:
        return [Finding("error", f"DMARC {domain}: no DMARC record ({BULK}, p=none at least). Ask your domain's "
                                 f"admin for this TXT record on _dmarc.{domain}:  v=DMARC1; p=none; {report}  (then, "
                                 "once the reports show that all your mail passes, p=quarantine)")]
    record = records[0]
    tags = {k.strip().lower(): v.strip() for k, _, v in (t.partition("=") for t in record.split(";")) if k.strip()}
    policy = tags.get("p", "").lower()
    rua = f"rua={tags['rua']}" if "rua" in tags else report
    findings = []
    if policy == "none":
        findings.append(Finding("warning", f"DMARC {name}: '{record}': policy none is what Gmail, Yahoo and "
                                           "Outlook.com require at least, but it asks receivers to do nothing with "
                                           "mail that fakes your domain. When the reports show all your mail "
                                           f"passes, ask for this TXT record on {name}:  "
                                           f"v=DMARC1; p=quarantine; {rua}"))
    elif policy in ("quarantine", "reject"):
        findings.append(Finding("ok", f"DMARC {name}: '{record}' (policy {policy})"))
    else:
        findings.append(Finding("error", f"DMARC {name}: '{record}' has no valid policy (p=none, quarantine or "
                                         f"reject). Ask for:  v=DMARC1; p=none; {rua}"))
    strict = "; adkim=s: the DKIM domain must be exactly " + domain if tags.get("adkim", "r").lower() == "s" else ""
    if microsoft and not dkim_ok:
        findings.append(Finding("warning", f"DMARC alignment: without DKIM for {domain}, Microsoft 365 signs with its "
                                           "own onmicrosoft.com domain, which does not align with From; DMARC then "
                                           "rests on SPF alone. Add the DKIM records above."))
    else:
        how = (f"Microsoft 365 signs with d={domain}" if microsoft
               else f"the DKIM signature's domain (d=) must be {domain} or a parent of it")
        findings.append(Finding("ok", f"DMARC alignment: From is {domain}; {how}{strict}"))
    return findings
