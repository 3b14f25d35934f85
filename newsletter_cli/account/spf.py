"""The sending domain's SPF record as RFC 7208 judges it: one record, at most 10 DNS-querying terms over the whole
include tree (section 4.6.4), and whether it covers the service that sends the newsletter.

A receiver evaluates the record term by term and stops with a permanent error (permerror) at the eleventh
lookup, so an include that comes after the limit (Microsoft 365's, often added last) covers nothing: that is
an error, not "ok". The advice for a record to change keeps every include it has.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Protocol

MAX_LOOKUPS = 10  # RFC 7208 4.6.4
LOOKUP_TERMS = ("include", "a", "mx", "ptr", "exists")  # plus the redirect= modifier


class Resolver(Protocol):
    def txt(self, name: str, prefix: str) -> list[str]: ...


@dataclass
class Walk:
    """What evaluating the record would ask of DNS, in the order a receiver asks it."""

    lookups: int = 0
    include_at: int | None = None  # the lookup number at which the wanted include was met (None: never)
    covers_address: bool = False  # an ip4/ip6 term (at any depth, within the limit) holds the sending host
    broken: list[str] = field(default_factory=list)  # include targets without (exactly one) SPF record
    seen: set[str] = field(default_factory=set)


def records(lookup: Resolver, domain: str) -> list[str]:
    return lookup.txt(domain, "v=spf1")


def _terms(record: str) -> list[str]:
    return [t for t in record.split()[1:] if t]


def walk(record: str, lookup: Resolver, include: str, addresses: list[str], state: Walk | None = None,
         depth: int = 0) -> Walk:
    """Count the DNS lookups of `record` and its includes/redirect (each include, a, mx, ptr, exists and redirect
    is one), noting where `include` is met and whether an ip4/ip6 term within the limit holds `addresses`."""
    state = state or Walk()
    if depth > 20:  # a loop of includes: counted far beyond the limit already
        return state
    redirect = None
    for term in _terms(record):
        body = term.lstrip("+-~?")
        name, _, value = body.partition(":")
        name = name.lower().split("/")[0]
        if "=" in body and ":" not in body.split("=")[0]:
            key, _, target = body.partition("=")
            if key.lower() == "redirect":
                redirect = target
            continue
        if name in LOOKUP_TERMS:
            state.lookups += 1
        if name == "include" and value:
            target = value.lower().rstrip(".")
            if target == include and state.include_at is None:
                state.include_at = state.lookups
            if target in state.seen:
                continue
            state.seen.add(target)
            found = records(lookup, target)
            if len(found) != 1:
                state.broken.append(target)
                continue
            walk(found[0], lookup, include, addresses, state, depth + 1)
        elif name in ("ip4", "ip6") and addresses and state.lookups <= MAX_LOOKUPS:
            try:
                network = ipaddress.ip_network(value, strict=False)
            except ValueError:
                continue
            if any(ipaddress.ip_address(a) in network for a in addresses if _same_family(a, network)):
                state.covers_address = True
    if redirect and "all" not in [t.lstrip("+-~?").lower() for t in _terms(record)]:
        state.lookups += 1
        found = records(lookup, redirect.lower().rstrip("."))
        if len(found) == 1:
            walk(found[0], lookup, include, addresses, state, depth + 1)
        else:
            state.broken.append(redirect)
    return state


def _same_family(address: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return ipaddress.ip_address(address).version == network.version


def merged(found: list[str], include: str | None) -> str:
    """One record holding every term of `found` (in order, no repeats), `include` added when missing, and one
    `all` at the end (the first record's, else -all): what several SPF records must become."""
    terms: list[str] = []
    ending = None
    for record in found:
        for term in _terms(record):
            if re.fullmatch(r"[-~?+]?all", term, re.IGNORECASE):
                ending = ending or term
            elif term.lower() not in [t.lower() for t in terms]:
                terms.append(term)
    if include and f"include:{include}" not in [t.lower() for t in terms]:
        terms.append(f"include:{include}")
    return " ".join(["v=spf1", *terms, ending or "-all"])
