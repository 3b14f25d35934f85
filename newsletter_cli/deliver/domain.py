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

from newsletter_cli.settings import Settings

M365_SPF = "spf.protection.outlook.com"
M365_HOSTS = re.compile(r"(^|\.)(office365\.com|outlook\.com|office\.com)$", re.IGNORECASE)
BULK = "Gmail, Yahoo and Outlook.com require it of bulk senders"
Level = Literal["ok", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    level: Level
    text: str


class Offline(Exception):
    """No DNS answers at all: the checks are skipped, not failed."""


class Lookup:
    """Answers from the resolver in DNS_SERVER (or the system's), '' and [] for names that do not exist."""

    def __init__(self, settings: Settings, timeout: float = 5.0):
        try:
            self.resolver = dns.resolver.Resolver(configure=settings.dns_server is None)
        except dns.resolver.NoResolverConfiguration:
            raise Offline("this computer has no DNS server configured") from None
        if settings.dns_server is not None:
            self.resolver.nameservers = [settings.dns_server[0]]
            self.resolver.port = settings.dns_server[1]
        self.resolver.lifetime = timeout

    def _answer(self, name: str, kind: str) -> list[str]:
        try:
            answer = self.resolver.resolve(name, kind)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.name.EmptyLabel, dns.name.LabelTooLong):
            return []
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            raise Offline(f"no answer from the DNS server ({type(exc).__name__})") from None
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

    def addresses(self, name: str) -> list[str]:
        try:
            return [str(ipaddress.ip_address(name))]
        except ValueError:
            return self._answer(name, "A") + self._answer(name, "AAAA")


def uses_microsoft(settings: Settings, mx: list[str]) -> bool:
    """Whether the mail goes out through Microsoft 365: its SMTP host, an Entra app, or the domain's MX."""
    return bool(M365_HOSTS.search(settings.smtp_host or "") or settings.oauth_client_id
                or any(host.endswith(".mail.protection.outlook.com") for host in mx))


def check_domain(settings: Settings, lookup: Lookup | None = None) -> list[Finding]:
    """The findings for NEWSLETTER_FROM's domain; one 'skipped' note (level ok) when DNS cannot be asked."""
    domain = settings.from_address.rpartition("@")[2].lower()
    if not domain:
        return []
    try:
        lookup = lookup or Lookup(settings)
        mx = lookup.mx(domain)
        microsoft = uses_microsoft(settings, mx)
        findings = [_mx(domain, mx, lookup), _spf(domain, settings, lookup, microsoft)]
        dkim = _dkim(domain, settings, lookup, microsoft)
        findings += dkim + _dmarc(domain, lookup, microsoft, all(f.level == "ok" for f in dkim))
    except Offline as exc:
        return [Finding("ok", f"DNS checks of {domain} skipped: {exc} (offline?). Run `newsletter doctor` again "
                              "with an internet connection, or set DNS_SERVER.")]
    return findings


def _mx(domain: str, mx: list[str], lookup: Lookup) -> Finding:
    if mx:
        return Finding("ok", f"MX {domain}: {', '.join(mx)} (replies and bounces can arrive)")
    if lookup.addresses(domain) or lookup.txt(domain, "v=spf1"):
        return Finding("warning", f"MX {domain}: none, so nobody can reply to the newsletter's address and some "
                                  f"receivers distrust it. Ask for the MX record of your mail service (Microsoft 365: "
                                  f"{domain} MX 0 {domain.replace('.', '-')}.mail.protection.outlook.com).")
    return Finding("error", f"{domain}: this domain does not exist in DNS. Check NEWSLETTER_FROM.")


def _spf_covers(record: str, lookup: Lookup, targets: tuple[str, list[str]], depth: int = 0) -> bool:
    """Whether an SPF record names `targets` (an include, or the sending host's addresses), following includes."""
    include, addresses = targets
    if depth > 9:  # SPF allows ten lookups
        return False
    for term in record.split()[1:]:
        mechanism, _, value = term.lstrip("+").partition(":")
        if term.startswith(("-", "~", "?")):
            continue
        if mechanism == "include" and value.lower().rstrip(".") == include:
            return True
        if mechanism in ("include", "redirect") or term.startswith("redirect="):
            value = value or term.partition("=")[2]
            if any(_spf_covers(r, lookup, targets, depth + 1) for r in lookup.txt(value, "v=spf1")):
                return True
        if mechanism in ("ip4", "ip6") and addresses:
            network = ipaddress.ip_network(value, strict=False)
            if any(ipaddress.ip_address(a) in network for a in addresses):
                return True
    return False


def _spf(domain: str, settings: Settings, lookup: Lookup, microsoft: bool) -> Finding:
    records = lookup.txt(domain, "v=spf1")
    suggestion = f"v=spf1 include:{M365_SPF} -all" if microsoft else "v=spf1 include:<your mail service> -all"
    if not records:
        return Finding("error", f"SPF {domain}: no SPF record ({BULK}). Ask your domain's admin for this TXT "
                                f"record on {domain}:  {suggestion}")
    if len(records) > 1:
        return Finding("error", f"SPF {domain}: {len(records)} SPF records; receivers then ignore them all. Merge "
                                f"them into one TXT record, e.g.  {suggestion}")
    record = records[0]
    if re.search(r"(^|\s)\+?all\b", record):
        return Finding("error", f"SPF {domain}: '{record}' ends in +all: anyone may send as {domain}. Ask for  "
                                f"{suggestion}")
    if microsoft:
        if not _spf_covers(record, lookup, (M365_SPF, [])):
            fixed = re.sub(r"\s([-~?]all|redirect=\S+)", f" include:{M365_SPF} \\1", record, count=1)
            fixed = fixed if M365_SPF in fixed else f"{record} include:{M365_SPF}"
            return Finding("error", f"SPF {domain}: '{record}' does not include Microsoft 365 ({M365_SPF}), so "
                                    f"mail sent through Microsoft 365 fails SPF ({BULK}). Ask your domain's admin to "
                                    f"change the TXT record on {domain} to:  {fixed}")
        return Finding("ok", f"SPF {domain}: '{record}' covers Microsoft 365")
    host = settings.smtp_host
    if host and _spf_covers(record, lookup, ("", lookup.addresses(host))):
        return Finding("ok", f"SPF {domain}: '{record}' covers {host}")
    return Finding("warning", f"SPF {domain}: '{record}'; could not confirm that it covers "
                              f"{host or 'the SMTP server'} (your mail service names the include to add)")


def _dkim(domain: str, settings: Settings, lookup: Lookup, microsoft: bool) -> list[Finding]:
    if not microsoft:
        return [Finding("ok", f"DKIM {domain}: not checked (the selector depends on your mail service; {BULK}: ask "
                              "your mail service how to switch DKIM signing on for your domain)")]
    tenant = settings.oauth_tenant or ""
    initial = tenant if tenant.endswith(".onmicrosoft.com") else "<your tenant>.onmicrosoft.com"
    out = []
    for selector in ("selector1", "selector2"):
        name = f"{selector}._domainkey.{domain}"
        target = lookup.cname(name)
        expected = f"{selector}-{domain.replace('.', '-')}._domainkey.{initial}"
        if target is None:
            out.append(Finding("error", f"DKIM {name}: no CNAME record, so Microsoft 365 cannot sign with {domain} "
                                        f"and DMARC fails ({BULK}). In Microsoft Defender (Email & collaboration > "
                                        "Policies > Email authentication settings > DKIM) select the domain; it shows "
                                        f"the exact records. Ask your domain's admin for:  {name} CNAME {expected}  "
                                        "and then switch DKIM signing on there."))
        elif not lookup.txt(target, "v=DKIM1") and not any("p=" in t for t in lookup.txt(target, "")):
            out.append(Finding("warning", f"DKIM {name}: CNAME to {target}, which has no key yet: switch DKIM signing "
                                          f"on for {domain} in Microsoft Defender (it publishes the key)."))
        else:
            out.append(Finding("ok", f"DKIM {name}: CNAME to {target}"))
    return out


def _dmarc(domain: str, lookup: Lookup, microsoft: bool, dkim_ok: bool) -> list[Finding]:
    name, records = f"_dmarc.{domain}", lookup.txt(f"_dmarc.{domain}", "v=DMARC1")
    parent = domain.split(".", 1)[1] if domain.count(".") > 1 else None
    if not records and parent:  # a subdomain falls under its organisation's policy
        name, records = f"_dmarc.{parent}", lookup.txt(f"_dmarc.{parent}", "v=DMARC1")
    report = f"rua=mailto:dmarc@{parent or domain}"
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
