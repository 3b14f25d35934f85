"""A small OAuth 2.0 identity provider for tests: what MSAL needs, over HTTPS on 127.0.0.1.

    with OAuthProvider(tls_context, tenant="vzhg.nl", client_id=CLIENT) as idp:
        idp.authority                      # https://127.0.0.1:<port>/vzhg.nl  (OAUTH_AUTHORITY)
        idp.auto_approve = "nb@vzhg.nl"    # the user signs in at the first poll after one 'pending'
        idp.approve(user_code, "nb@vzhg.nl")   # or: the user typed the code (what the browser page does)
        idp.check("nb@vzhg.nl", token)     # the SMTP server's question: a valid token for this mailbox?
        idp.revoke("nb@vzhg.nl")           # an administrator revoked the sign-in
        idp.expire_access_tokens()         # an hour has passed (for the server; the client's cache does not know)

Speaks OpenID discovery, the device authorization endpoint (RFC 8628), and the token endpoint for the
device_code, refresh_token and client_credentials grants (client secret or a certificate-signed
client_assertion, RFC 7523). Access tokens are opaque random strings that live `access_lifetime` seconds;
refresh tokens rotate and stay valid until revoked. Errors carry Microsoft's AADSTS codes.
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlparse

SMTP_SCOPE = "https://outlook.office365.com/SMTP.Send"
APP_SCOPE = "https://outlook.office365.com/.default"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Issued:
    user: str | None  # None: the application itself (client credentials)
    client_id: str
    scopes: set[str]
    expires: float
    revoked: bool = False


@dataclass
class Device:
    device_code: str
    user_code: str
    client_id: str
    scopes: set[str]
    expires: float
    user: str | None = None
    polls: int = 0


@dataclass
class State:
    tenant: str
    client_id: str
    client_secret: str | None = None
    certificate_pem: bytes | None = None  # the application's certificate, for client assertions
    access_lifetime: int = 3600
    auto_approve: str | None = None
    granted: set[str] = field(default_factory=set)  # mailboxes the application (client credentials) may use
    access: dict[str, Issued] = field(default_factory=dict)
    refresh: dict[str, Issued] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    grants: Counter[str] = field(default_factory=Counter)  # grant type -> number of tokens issued
    asked: Counter[str] = field(default_factory=Counter)  # grant type -> number of token requests
    lock: threading.Lock = field(default_factory=threading.Lock)


class OAuthProvider:
    def __init__(self, tls: ssl.SSLContext, *, tenant: str = "vzhg.nl", client_id: str = "test-client",
                 client_secret: str | None = None, certificate_pem: bytes | None = None, access_lifetime: int = 3600):
        self.state = State(tenant, client_id, client_secret, certificate_pem, access_lifetime)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.server.daemon_threads = True
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.authority = f"https://127.0.0.1:{self.port}/{tenant}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def auto_approve(self) -> str | None:
        return self.state.auto_approve

    @auto_approve.setter
    def auto_approve(self, user: str | None) -> None:
        self.state.auto_approve = user

    @property
    def grants(self) -> Counter[str]:
        return self.state.grants

    def approve(self, user_code: str, user: str) -> None:
        with self.state.lock:
            for device in self.state.devices.values():
                if device.user_code == user_code:
                    device.user = user

    def check(self, user: str, token: str) -> bool:
        """Whether `token` is an unexpired, unrevoked access token for sending as `user`."""
        with self.state.lock:
            issued = self.state.access.get(token)
            if issued is None or issued.revoked or issued.expires <= time.time():
                return False
            if issued.user is None:
                return APP_SCOPE in issued.scopes and user.lower() in self.state.granted
            return SMTP_SCOPE in issued.scopes and issued.user.lower() == user.lower()

    def revoke(self, user: str) -> None:
        with self.state.lock:
            for issued in [*self.state.refresh.values(), *self.state.access.values()]:
                if issued.user == user:
                    issued.revoked = True

    def expire_access_tokens(self) -> None:
        with self.state.lock:
            for issued in self.state.access.values():
                issued.expires = 0

    def grant_mailbox(self, mailbox: str) -> None:
        """What the Exchange admin does for the unattended mode (service principal + FullAccess)."""
        self.state.granted.add(mailbox.lower())


def _handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def error(self, error: str, description: str, status: int = 400) -> None:
            self.reply(status, {"error": error, "error_description": description})

        def base(self) -> str:
            return f"https://127.0.0.1:{self.server.server_address[1]}/{state.tenant}"

        def do_GET(self) -> None:
            if urlparse(self.path).path == f"/{state.tenant}/v2.0/.well-known/openid-configuration":
                base = self.base()
                self.reply(200, {"issuer": f"{base}/v2.0", "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                                 "token_endpoint": f"{base}/oauth2/v2.0/token",
                                 "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode"})
            else:
                self.error("invalid_tenant", "AADSTS90002: Tenant not found.", 400)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            path = urlparse(self.path).path
            with state.lock:
                if path == f"/{state.tenant}/oauth2/v2.0/devicecode":
                    self.devicecode(form)
                elif path == f"/{state.tenant}/oauth2/v2.0/token":
                    self.token(form)
                elif path == "/devicelogin":  # the page where the user types the code
                    device = next((d for d in state.devices.values() if d.user_code == form.get("user_code")), None)
                    if device is not None:
                        device.user = form.get("username")
                    self.reply(200 if device else 404, {})
                else:
                    self.error("not_found", "no such endpoint", 404)

        def devicecode(self, form: dict[str, str]) -> None:
            if form.get("client_id") != state.client_id:
                return self.error("unauthorized_client", "AADSTS700016: Application not found in the directory.")
            code = secrets.token_hex(4).upper()
            user_code = f"{code[:4]}-{code[4:]}"
            device = Device(secrets.token_urlsafe(24), user_code, state.client_id,
                            set(form.get("scope", "").split()), time.time() + 900)
            state.devices[device.device_code] = device
            url = f"https://127.0.0.1:{self.server.server_address[1]}/devicelogin"
            self.reply(200, {"device_code": device.device_code, "user_code": user_code, "verification_uri": url,
                             "expires_in": 900, "interval": 1,
                             "message": f"To sign in, open {url} and enter the code {user_code}."})
            return None

        def token(self, form: dict[str, str]) -> None:
            grant = form.get("grant_type", "")
            state.asked[grant] += 1
            if form.get("client_id") != state.client_id:
                return self.error("unauthorized_client", "AADSTS700016: Application not found in the directory.")
            if grant == "urn:ietf:params:oauth:grant-type:device_code":
                device = state.devices.get(form.get("device_code", ""))
                if device is None or device.expires < time.time():
                    return self.error("expired_token", "AADSTS70020: The provided value for device_code is expired.")
                device.polls += 1
                if device.user is None and state.auto_approve and device.polls > 1:
                    device.user = state.auto_approve
                if device.user is None:
                    return self.error("authorization_pending", "AADSTS70016: OAuth 2.0 device flow error. "
                                                               "Authorization is pending.")
                del state.devices[device.device_code]
                return self.issue(grant, device.user, device.scopes)
            if grant == "refresh_token":
                issued = state.refresh.get(form.get("refresh_token", ""))
                if issued is None or issued.revoked:
                    return self.error("invalid_grant", "AADSTS50173: The provided grant has expired due to it being "
                                                       "revoked, a fresh auth token is needed.")
                return self.issue(grant, issued.user, set(form.get("scope", "").split()) or issued.scopes)
            if grant == "client_credentials":
                if not self.client_authenticated(form):
                    return self.error("invalid_client", "AADSTS7000215: Invalid client secret provided.", 401)
                return self.issue(grant, None, set(form.get("scope", "").split()))
            return self.error("unsupported_grant_type", f"AADSTS70003: unsupported grant type {grant}")

        def client_authenticated(self, form: dict[str, str]) -> bool:
            if state.client_secret is not None and form.get("client_secret") == state.client_secret:
                return True
            assertion = form.get("client_assertion")
            if state.certificate_pem is None or not assertion:
                return False
            import jwt
            from cryptography import x509

            public_key = x509.load_pem_x509_certificate(state.certificate_pem).public_key()
            try:
                jwt.decode(assertion, public_key, algorithms=["PS256", "RS256"],  # type: ignore[arg-type]
                           audience=f"{self.base()}/oauth2/v2.0/token", issuer=state.client_id)
            except jwt.PyJWTError:
                return False
            return True

        def issue(self, grant: str, user: str | None, scopes: set[str]) -> None:
            now = time.time()
            access = secrets.token_urlsafe(32)
            state.access[access] = Issued(user, state.client_id, scopes, now + state.access_lifetime)
            state.grants[grant] += 1
            body: dict[str, Any] = {"token_type": "Bearer", "access_token": access,
                                    "expires_in": state.access_lifetime,
                                    "scope": " ".join(s for s in scopes if s not in ("openid", "profile",
                                                                                     "offline_access"))}
            if user is not None:
                refresh = secrets.token_urlsafe(32)
                state.refresh[refresh] = Issued(user, state.client_id, scopes, now + 90 * 86400)
                uid = _b64(user.encode())
                claims = {"iss": f"{self.base()}/v2.0", "sub": uid, "aud": state.client_id, "iat": int(now),
                          "exp": int(now) + 3600, "oid": uid, "tid": state.tenant, "preferred_username": user}
                body.update(refresh_token=refresh,
                            id_token=".".join([_b64(b'{"alg":"none","typ":"JWT"}'), _b64(json.dumps(claims).encode()),
                                               ""]),
                            client_info=_b64(json.dumps({"uid": uid, "utid": state.tenant}).encode()))
            self.reply(200, body)

    return Handler
