"""A real SMTP server for tests and benchmarks (aiosmtpd on 127.0.0.1), with faults on demand.

In process:

    with SmtpServer(defer_once={"b@example.org"}, reject={"c@example.org"}) as server:
        ... send to 127.0.0.1:server.port ...
        server.received          # [Received(mail_from, rcpt_tos, data)], raw bytes as sent
        server.count_for("a@example.org")

As a separate process (e.g. for a sink that a benchmark or a SIGKILL harness counts through files):

    python tests/smtp_server.py --spool DIR [--port 0] [--defer-once a@x,b@y] [--reject c@z] ...

prints `PORT <n>` on its first line of output, and writes each message to DIR as NNNNNN-<id>.eml plus a
.json envelope (written atomically), so another process can count them with `read_spool(DIR)`.

Knobs: STARTTLS or implicit TLS with a trustme certificate (`make_tls`), AUTH PLAIN/LOGIN with a password
table, XOAUTH2 with a token table, 451 once/always per address, 550 per address, drop the connection (before
the message) after N messages on it or for given addresses once, stall (store but never answer) after N
messages, store and then drop without answering for given addresses once, a delay before each reply to the
final dot and before other replies (latency), 421 at the greeting for the first N connections, Microsoft
365's 4.3.2 concurrency limit above N sessions, 250 instead of 354 to DATA, Exchange's SendAsDenied after the
data for given senders, and a quota reply after N
messages (Microsoft 365's 554 5.2.0 SubmissionQuotaExceeded). It offers PIPELINING (RFC 2920) unless
`pipelining=False` (`--no-pipelining`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import logging
import os
import random
import socket
import ssl
import threading
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

logging.getLogger("mail.log").setLevel(logging.ERROR)
SEND_AS_DENIED = ("554 5.2.252 SendAsDenied; {login} not allowed to send as {sender}; "
                  "STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process "
                  "message due to a permanent exception with message [BeginDiagnosticData]")
QUOTA_REPLY = "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None = None


@dataclass
class Faults:
    """What the server does wrong, and to whom (addresses in lower case)."""

    defer_once: set[str] = field(default_factory=set)  # 451 at RCPT the first time
    defer_always: set[str] = field(default_factory=set)  # 451 at RCPT every time
    reject: set[str] = field(default_factory=set)  # 550 at RCPT
    drop_once: set[str] = field(default_factory=set)  # close the connection at RCPT (nothing stored), once
    drop_after: int | None = None  # close each connection at the MAIL FROM after this many messages on it
    stall_after: int | None = None  # after this many messages in all, store the next and never answer
    store_then_drop: set[str] = field(default_factory=set)  # store, then close without answering, once
    quota_after: int | None = None  # after this many messages in all, answer MAIL FROM with QUOTA_REPLY
    reply_delay: float | tuple[float, float] = 0.0  # seconds (or a random range) before answering the final dot
    latency: float = 0.0  # seconds before answering EHLO, MAIL and RCPT (a round trip)
    greet_421: int = 0  # the first N connections are greeted with 421 and closed
    max_sessions: int | None = None  # more sessions at once get Microsoft 365's 4.3.2 at MAIL FROM
    data_250: set[str] = field(default_factory=set)  # answer DATA with 250 instead of 354 (a broken server)
    send_as_denied: set[str] = field(default_factory=set)  # senders (MAIL FROM) refused after the data, as Exchange
    # does without Send As: MAIL FROM and RCPT are accepted, the message is not stored


class Handler:
    """Stores messages as raw bytes (no parsing: cheap enough for a benchmark sink) and injects faults."""

    def __init__(self, faults: Faults | None = None, spool: Path | None = None, keep: bool = True,
                 pipelining: bool = True):
        self.faults = faults or Faults()
        self.pipelining = pipelining
        self.spool, self.keep = spool, keep
        self.received: list[Received] = []
        self.count = 0
        self.seen: set[str] = set()  # (event, address) pairs already used by *_once faults
        self.stalled = False
        self.sessions = 0  # open at this moment
        self.greeted_421 = 0
        self._serial = itertools.count(1)
        self._lock = threading.Lock()
        if spool:
            spool.mkdir(parents=True, exist_ok=True)

    def _once(self, event: str, address: str) -> bool:
        key = f"{event}:{address}"
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        """Offer PIPELINING (RFC 2920) as real servers do; aiosmtpd reads pipelined commands in order anyway."""
        session.host_name = hostname
        await self._latency()
        if self.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def _latency(self) -> None:
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        await self._latency()
        if self.faults.drop_after is not None and getattr(session, "messages", 0) >= self.faults.drop_after:
            server.transport.close()
            return "421 4.4.2 Connection dropped (test)"
        if self.faults.max_sessions is not None and self.sessions > self.faults.max_sessions:
            return "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"
        if self.faults.quota_after is not None and self.count >= self.faults.quota_after:
            return QUOTA_REPLY
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        key = address.lower()
        await self._latency()
        if key in self.faults.drop_once and self._once("drop", key):
            server.transport.close()
            return "421 4.4.2 Connection dropped (test)"
        if key in self.faults.reject:
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if key in self.faults.defer_always or (key in self.faults.defer_once and self._once("defer", key)):
            return "451 4.3.0 Temporary failure, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if (envelope.mail_from or "").lower() in self.faults.send_as_denied:
            login = getattr(getattr(session, "auth_data", None), "login", b"") or b"the signed-in user"
            login = login.decode() if isinstance(login, bytes) else str(login)
            return SEND_AS_DENIED.format(login=login, sender=envelope.mail_from)
        on_connection = getattr(session, "messages", 0)
        rcpts = [r.lower() for r in envelope.rcpt_tos]
        session.messages = on_connection + 1  # type: ignore[attr-defined]
        self.store(envelope, getattr(session, "auth_data", None))
        if any(r in self.faults.store_then_drop and self._once("store-drop", r) for r in rcpts):
            server.transport.close()  # stored, and the reply never comes
            return "250 2.0.0 OK: queued"
        delay = self.faults.reply_delay
        if delay:
            await asyncio.sleep(random.uniform(*delay) if isinstance(delay, tuple) else delay)
        if self.faults.stall_after is not None and not self.stalled and self.count > self.faults.stall_after:
            self.stalled = True
            await asyncio.Event().wait()  # stored, never answered: the client cannot know
        return "250 2.0.0 OK: queued"

    def store(self, envelope: Envelope, login: Any) -> None:
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode("utf-8")
        login = getattr(login, "login", login)
        login_name = login.decode() if isinstance(login, bytes) else login
        item = Received(envelope.mail_from or "", list(envelope.rcpt_tos), bytes(data), login_name)
        with self._lock:
            self.count += 1
            serial = next(self._serial)
            if self.keep:
                self.received.append(item)
        if self.spool:
            name = f"{serial:06d}-{uuid.uuid4().hex[:8]}"
            meta = {"mail_from": item.mail_from, "rcpt_tos": item.rcpt_tos, "login": item.login}
            for suffix, content in ((".eml", item.data), (".json", json.dumps(meta).encode())):
                tmp = self.spool / f".{name}{suffix}.tmp"
                tmp.write_bytes(content)
                os.replace(tmp, self.spool / f"{name}{suffix}")


class XOAuth2SMTP(SMTP):
    """aiosmtpd's SMTP plus AUTH XOAUTH2 (`user=...^Aauth=Bearer ...^A^A`), checked against `tokens`, and the
    faults that need the session itself: 421 at the greeting, 250 to DATA, counting open sessions."""

    tokens: dict[str, str] = {}
    token_check: Any = None  # (user, token) -> bool, e.g. tests/oauth_provider.py's OAuthProvider.check
    xoauth2_attempts: list[str] = []  # the user of each AUTH XOAUTH2 (set per server)

    async def _handle_client(self) -> None:
        handler = self.event_handler
        if handler.greeted_421 < handler.faults.greet_421:
            handler.greeted_421 += 1
            await self.push("421 4.3.2 Service not available, try again later")
            self.transport.close()
            return
        handler.sessions += 1
        try:
            await super()._handle_client()
        finally:
            handler.sessions -= 1

    async def smtp_DATA(self, arg: str) -> None:
        if any(r.lower() in self.event_handler.faults.data_250 for r in self.envelope.rcpt_tos):
            await self.push("250 2.0.0 OK")
            return
        await super().smtp_DATA(arg)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) > 1:
            blob = base64.b64decode(args[1])
        else:
            answer = await self.challenge_auth("", encode_to_b64=False)
            if not isinstance(answer, bytes):
                return AuthResult(success=False, handled=False)
            blob = answer
        parts = dict(p.split("=", 1) for p in blob.decode("utf-8", "replace").split("\x01") if "=" in p)
        user, token = parts.get("user", ""), parts.get("auth", "").removeprefix("Bearer ")
        self.xoauth2_attempts.append(user)
        if user and (self.tokens.get(user) == token or (self.token_check is not None and self.token_check(user, token))):
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        error = base64.b64encode(b'{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/SMTP"}')
        await self.challenge_auth(error.decode(), encode_to_b64=False)  # the client answers empty
        return AuthResult(success=False, handled=False)


def make_tls(tmp: Path) -> tuple[Path, ssl.SSLContext, Path]:
    """A throwaway CA and a server certificate for localhost/127.0.0.1: (CA .pem, server context, cert)."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_file = tmp / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    cert_file = tmp / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    return ca_file, context, cert_file


class _Controller(Controller):
    """Controller on a socket bound beforehand, so port 0 (any free port) works."""

    def __init__(self, handler: Handler, sock: socket.socket, smtp_class: type[SMTP], **kwargs: Any):
        self._sock, self._smtp_class = sock, smtp_class
        super().__init__(handler, hostname="127.0.0.1", port=sock.getsockname()[1], **kwargs)

    def _create_server(self):  # type: ignore[override]
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)

    def factory(self) -> SMTP:
        with warnings.catch_warnings():  # AUTH without TLS is what some tests want
            warnings.simplefilter("ignore")
            return self._smtp_class(self.handler, **self.SMTP_kwargs)


class SmtpServer:
    """The server as a context manager; `port`, `received`, `count_for(address)`, `handler.faults`."""

    def __init__(self, *, port: int = 0, tls: ssl.SSLContext | None = None, implicit_tls: bool = False,
                 users: dict[str, str] | None = None, tokens: dict[str, str] | None = None,
                 spool: Path | None = None, keep: bool = True, auth_exclude: tuple[str, ...] = (),
                 pipelining: bool = True, token_check: Any = None, auth_refusal: str | None = None,
                 smtputf8: bool = False, **faults: Any):
        self.handler = Handler(Faults(**{k: set(v) if isinstance(v, (set, list)) or
                                         (isinstance(v, tuple) and k != "reply_delay") else v
                                         for k, v in faults.items()}), spool, keep, pipelining)
        self.users, self.tokens = users or {}, tokens or {}
        self.auth_refusal = auth_refusal  # the reply to every password login (e.g. Microsoft's 535 5.7.139)
        self.auth_attempts: list[tuple[str, str]] = []  # (mechanism, login)
        self.xoauth2_attempts: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        smtp_class = type("TestSMTP", (XOAuth2SMTP,), {
            "tokens": self.tokens, "xoauth2_attempts": self.xoauth2_attempts,
            "token_check": staticmethod(token_check) if token_check else None})
        xoauth2 = bool(tokens or token_check)
        kwargs: dict[str, Any] = {"decode_data": False, "ready_timeout": 10, "enable_SMTPUTF8": smtputf8}
        kwargs["auth_exclude_mechanism"] = list(auth_exclude) + ([] if xoauth2 else ["XOAUTH2"])
        if tls is not None and implicit_tls:
            kwargs["ssl_context"] = tls
        elif tls is not None:
            kwargs.update(tls_context=tls, require_starttls=True)
        if users or xoauth2:
            kwargs.update(authenticator=self._authenticate, auth_required=True, auth_require_tls=tls is not None)
        self.controller = _Controller(self.handler, self.sock, smtp_class, **kwargs)

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            login, password = data.login.decode(), data.password.decode()
            self.auth_attempts.append((mechanism, login))
            if self.auth_refusal:
                return AuthResult(success=False, handled=False, message=self.auth_refusal)
            ok = login in self.users and self.users[login] == password
            return AuthResult(success=ok, handled=False, auth_data=data if ok else None)
        return AuthResult(success=False, handled=False)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop(no_assert=True)

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def count_for(self, address: str) -> int:
        return sum(1 for r in self.received for to in r.rcpt_tos if to.lower() == address.lower())


def read_spool(spool: Path) -> list[Received]:
    """The messages a spooling server (maybe in another process) has written, in order."""
    out = []
    for meta_file in sorted(spool.glob("*.json")):
        meta = json.loads(meta_file.read_text())
        out.append(Received(meta["mail_from"], meta["rcpt_tos"], meta_file.with_suffix(".eml").read_bytes(),
                            meta.get("login")))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--spool", type=Path, required=True)
    parser.add_argument("--tls-dir", type=Path, help="make a CA here (test-ca.pem) and offer STARTTLS")
    parser.add_argument("--user", action="append", default=[], help="login:password (repeatable)")
    for name in ("defer-once", "defer-always", "reject", "drop-once", "store-then-drop"):
        parser.add_argument(f"--{name}", default="", help="comma-separated addresses")
    for name in ("drop-after", "stall-after", "quota-after", "max-sessions"):
        parser.add_argument(f"--{name}", type=int)
    parser.add_argument("--reply-delay", type=float, default=0.0, help="seconds before answering the final dot")
    parser.add_argument("--no-pipelining", action="store_true", help="do not offer PIPELINING")
    args = parser.parse_args(argv)
    faults: dict[str, Any] = {k: {a.lower() for a in getattr(args, k).split(",") if a}
                              for k in ("defer_once", "defer_always", "reject", "drop_once", "store_then_drop")}
    faults.update({k: getattr(args, k) for k in ("drop_after", "stall_after", "quota_after", "max_sessions",
                                                  "reply_delay")})
    tls = make_tls(args.tls_dir)[1] if args.tls_dir else None
    users = dict(u.split(":", 1) for u in args.user)
    server = SmtpServer(port=args.port, tls=tls, users=users, spool=args.spool, keep=False,
                        pipelining=not args.no_pipelining, **faults).start()
    print(f"PORT {server.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
