"""A real DNS server for tests (dnslib, UDP on 127.0.0.1, any free port) answering from a zone text.

    with DnsServer('''
        vzhg.example.      300 IN MX  10 vzhg-example.mail.protection.outlook.com.
        vzhg.example.      300 IN TXT "v=spf1 include:spf.protection.outlook.com -all"
    ''') as dns:
        ... DNS_SERVER=127.0.0.1:{dns.port} ...

Names not in the zone get NXDOMAIN; a name in the zone without the asked type, or a name with records only
below it (an empty non-terminal, e.g. tenant.onmicrosoft.com), gets an empty answer. Faults: `servfail`
names (or "*" for every name) are answered SERVFAIL, as a resolver that cannot reach the authority does; a
server that never answers is a bound UDP socket (`silent_server()`).
"""

from __future__ import annotations

import logging
import socket
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

from dnslib import QTYPE, RCODE, RR
from dnslib.server import DNSLogger, DNSServer


class ZoneResolver:
    """Answers from a list of records; follows CNAMEs inside the zone as a recursive resolver would."""

    def __init__(self, zone: str, servfail: set[str] | None = None):
        self.records = RR.fromZone(textwrap.dedent(zone))
        self.servfail = {n.lower().rstrip(".") for n in servfail or set()}

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name, qtype = request.q.qname, QTYPE[request.q.qtype]
        if "*" in self.servfail or str(name).lower().rstrip(".") in self.servfail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        for _ in range(8):
            here = [rr for rr in self.records if rr.rname == name]
            wanted = [rr for rr in here if QTYPE[rr.rtype] == qtype]
            cname = [rr for rr in here if QTYPE[rr.rtype] == "CNAME"]
            if wanted or not cname or qtype == "CNAME":
                for rr in wanted:
                    reply.add_answer(rr)
                below = any(str(rr.rname).lower().endswith("." + str(name).lower()) for rr in self.records)
                if not here and not reply.rr and not below:
                    reply.header.rcode = RCODE.NXDOMAIN
                return reply
            reply.add_answer(cname[0])
            name = cname[0].rdata.label
        return reply


class DnsServer:
    def __init__(self, zone: str, servfail: set[str] | None = None):
        logging.getLogger("dnslib").setLevel(logging.ERROR)
        self.server = DNSServer(ZoneResolver(zone, servfail), address="127.0.0.1", port=0,
                                logger=DNSLogger(log="-request,-reply,-truncated,-error", prefix=False))
        self.port = self.server.server.server_address[1]

    def __enter__(self) -> Self:
        self.server.start_thread()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.stop()
        self.server.server.server_close()


@contextmanager
def silent_server() -> Iterator[int]:
    """A 'DNS server' that receives every question and never answers: its port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        yield silent.getsockname()[1]


# The example association's domain, set up as it should be for Microsoft 365 (what `project` tests see).
GOOD_ZONE = """
vzhg.nl.                          300 IN MX    0 vzhg-nl.mail.protection.outlook.com.
vzhg.nl.                          300 IN TXT   "v=spf1 include:spf.protection.outlook.com -all"
selector1._domainkey.vzhg.nl.     300 IN CNAME selector1-vzhg-nl._domainkey.vzhg.onmicrosoft.com.
selector2._domainkey.vzhg.nl.     300 IN CNAME selector2-vzhg-nl._domainkey.vzhg.onmicrosoft.com.
selector1-vzhg-nl._domainkey.vzhg.onmicrosoft.com. 300 IN TXT "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"
selector2-vzhg-nl._domainkey.vzhg.onmicrosoft.com. 300 IN TXT "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEB"
_dmarc.vzhg.nl.                   300 IN TXT   "v=DMARC1; p=quarantine; rua=mailto:dmarc@vzhg.nl"
spf.protection.outlook.com.       300 IN TXT   "v=spf1 ip4:40.92.0.0/15 ip4:40.107.0.0/16 ip4:52.100.0.0/15 ip4:104.47.0.0/17 ip6:2a01:111:f400::/48 -all"
"""
