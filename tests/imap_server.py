"""A real IMAP server for the tests: Debian's Dovecot on 127.0.0.1, IMAP over TLS with a throwaway certificate,
one user with a password, a Maildir in a temporary folder. Started in the foreground (`dovecot -F`) and
stopped at the end; `make system-packages` installs it (dovecot-imapd)."""

from __future__ import annotations

import http.server
import imaplib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import ClassVar

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER = "nieuwsbrief@vzhg.nl"
PASSWORD = "Imap-wachtwoord-42!"

CONFIG = """\
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{base}/cert.pem
ssl_key = <{base}/key.pem
auth_mechanisms = plain login xoauth2
auth_failure_delay = 0
first_valid_uid = 1
{users}
passdb {{
  driver = oauth2
  mechanisms = xoauth2
  args = {base}/oauth2.conf
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%u
}}
mail_location = maildir:{mail}/%u
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
"""


OAUTH2_CONFIG = """\
introspection_mode = auth
introspection_url = http://127.0.0.1:{port}/introspect
username_attribute = email
active_attribute = active
active_value = true
"""


class _Introspection(http.server.BaseHTTPRequestHandler):
    """The token check Dovecot asks for an XOAUTH2 login (RFC 7662 style): active, and whose token it is."""

    tokens: ClassVar[dict[str, str]] = {}  # access token -> user

    def do_GET(self) -> None:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        user = self.tokens.get(token)
        body = json.dumps({"active": True, "email": user} if user else {"active": False}).encode()
        self.send_response(200 if user else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def available() -> bool:
    return Path(DOVECOT).is_file()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ImapServer:
    """`port`, `ca_file`, `client()` (a logged-in imaplib connection), `append(raw, folder)`, `messages(folder)`."""

    def __init__(self, tmp: Path, tokens: dict[str, str] | None = None, capability: str | None = None,
                 password: str = PASSWORD):
        """`tokens`: OAuth access tokens the XOAUTH2 login accepts (token -> user); `capability`: what the server
        announces after the login instead of its own list (a server without MOVE or UIDPLUS, say)."""
        import trustme

        self.as_root = os.geteuid() == 0
        if self.as_root:
            # Dovecot's processes run as the users dovecot and nobody, which cannot enter pytest's temp folders
            # (private to root): everything goes into a folder of its own that they can reach.
            self.base = Path(tempfile.mkdtemp(prefix="newsletter-dovecot-"))
            self.base.chmod(0o755)
        else:
            self.base = tmp / "dovecot"
            self.base.mkdir()
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1")
        self.ca_file = self.base / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        cert.private_key_pem.write_to_path(str(self.base / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.base / "cert.pem"))
        self.password = password
        (self.base / "passwd").write_text(f"{USER}:{{PLAIN}}{password}\n", encoding="utf-8")
        self.mail = self.base / "mail"
        self.mail.mkdir()
        if self.as_root:  # Dovecot refuses to open a mailbox as root: the mail is nobody's
            import pwd

            nobody = pwd.getpwnam("nobody")
            uid, gid = nobody.pw_uid, nobody.pw_gid
            os.chown(self.mail, uid, gid)
            users = ""
        else:  # an ordinary user runs every Dovecot process as itself
            import getpass
            import grp

            uid, gid = os.getuid(), os.getgid()
            me, group = getpass.getuser(), grp.getgrgid(gid).gr_name
            users = f"default_login_user = {me}\ndefault_internal_user = {me}\ndefault_internal_group = {group}\n"
        self.port = _free_port()
        handler = type("Introspection", (_Introspection,), {"tokens": dict(tokens or {})})
        self.introspection = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        (self.base / "oauth2.conf").write_text(OAUTH2_CONFIG.format(port=self.introspection.server_address[1]),
                                               encoding="utf-8")
        self.config = self.base / "dovecot.conf"
        self.config.write_text(CONFIG.format(base=self.base, mail=self.mail, uid=uid, gid=gid, port=self.port,
                                             users=users), encoding="utf-8")
        if capability is not None:
            with self.config.open("a", encoding="utf-8") as config:
                config.write(f"imap_capability = {capability}\n")
        self.process: subprocess.Popen[bytes] | None = None
        self._serving = False

    def start(self) -> ImapServer:
        if not self._serving:
            self._serving = True
            threading.Thread(target=self.introspection.serve_forever, daemon=True).start()
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot stopped: {self.process.stderr.read().decode() if self.process.stderr else ''}"
                                   f"{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not listen on {self.port}: {self.log()}")

    def log(self) -> str:
        path = self.base / "dovecot.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def halt(self) -> None:
        """Stop Dovecot, keeping the mail (a server that goes away mid-run); start() brings it back."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the master and every session it started
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def stop(self) -> None:
        self.halt()
        self.introspection.shutdown()
        self.introspection.server_close()
        if self.as_root:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> ImapServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def client(self) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context, timeout=30)
        imap.authenticate("PLAIN", lambda _: f"\0{USER}\0{self.password}".encode())
        return imap

    def append(self, raw: bytes, folder: str = "INBOX", flags: str = "") -> None:
        imap = self.client()
        try:
            kind, data = imap.append(f'"{folder}"', flags or None, None, raw)
            assert kind == "OK", data
        finally:
            imap.logout()

    def messages(self, folder: str = "INBOX") -> list[bytes]:
        """Every message in a folder, as stored (read without marking them read); [] if there is no folder."""
        imap = self.client()
        try:
            kind, _ = imap.select(f'"{folder}"', readonly=True)
            if kind != "OK":
                return []
            _, data = imap.uid("SEARCH", "ALL")
            out = []
            for uid in data[0].split():
                _, fetched = imap.uid("FETCH", uid, "(BODY.PEEK[])")
                out.append(next(d[1] for d in fetched if isinstance(d, tuple)))
            return out
        finally:
            imap.logout()

    def flags(self, folder: str = "INBOX") -> list[str]:
        imap = self.client()
        try:
            imap.select(f'"{folder}"', readonly=True)
            _, data = imap.uid("FETCH", "1:*", "(FLAGS)")
            return [d.decode() for d in data if isinstance(d, bytes)]
        finally:
            imap.logout()
