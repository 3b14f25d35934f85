"""OAuth 2.0 access tokens for Microsoft 365 through MSAL: `newsletter login` once, then silent refreshes.

Two ways in. A signed-in mailbox (delegated): the device-code flow once (`newsletter login`), after which
every send gets a fresh access token from the refresh token in the token cache, for months. The application
itself (unattended, for a scheduled send): the client-credentials flow with OAUTH_CLIENT_SECRET or
OAUTH_CERTIFICATE. The token cache is a secret: it lives per user outside the project folder, encrypted with
the platform's keystore where there is one, else in a file only the user may read. No token is ever
returned except wrapped in a SecretStr, and none is put in an exception or a message.

A SignIn is one command's session: cli.py makes it and hands it to the SMTP connections and the mailbox. It
holds the MSAL application, the token cache it read and a refusal one connection heard; nothing outlives the
command (no module-level cache), so two commands in one process never share a sign-in.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlparse

from pydantic import SecretStr

from newsletter_cli.account.refusals import sign_in_error
from newsletter_cli.account.tokencache import (
    CacheError,
    CacheInfo,
    CacheProblem,
    cache_error,
    cache_location,
    protect,
    remove,
    token_cache,
)
from newsletter_cli.account.tokens import COMMAND_TIMEOUT, command_token
from newsletter_cli.errors import InputError, NewsletterError
from newsletter_cli.settings import Settings

SMTP_SCOPE = "https://outlook.office365.com/SMTP.Send"
IMAP_SCOPE = "https://outlook.office365.com/IMAP.AccessAsUser.All"
REFRESH_TOKEN_DAYS = 90  # Microsoft's refresh tokens stay valid this long after their last use


class SignInError(NewsletterError):
    """Getting a token failed; `relogin` says whether `newsletter login` fixes it."""

    def __init__(self, message: str, relogin: bool = False):
        super().__init__(message)
        self.relogin = relogin


@dataclass(frozen=True)
class DeviceCode:
    """What the user must do to sign in: open `url`, type `code`, before `expires_at`."""

    url: str
    code: str
    expires_at: float
    flow: dict[str, Any]
    scopes: tuple[str, ...] = (SMTP_SCOPE,)


@dataclass(frozen=True)
class SignedIn:
    username: str
    renewed: float | None  # when the refresh token was last issued (Unix time)

    @property
    def expected_until(self) -> float | None:
        """The refresh token works until about this time if it is not used again before then."""
        return self.renewed + REFRESH_TOKEN_DAYS * 86400 if self.renewed else None


def _verify(settings: Settings) -> str | bool:
    """Which certificate authorities the sign-in server may use: SMTP_CA_FILE when set, else the usual ones."""
    return str(settings.smtp_ca_file) if settings.smtp_ca_file else True


def _credential(settings: Settings) -> str | dict[str, Any] | None:
    if settings.oauth_client_secret:
        return settings.oauth_client_secret.get_secret_value()
    path = settings.oauth_certificate
    if path is None:
        return None
    password = settings.oauth_certificate_password.get_secret_value() or None
    if path.suffix.lower() in (".pfx", ".p12"):
        return {"private_key_pfx_path": str(path), "passphrase": password}
    text = path.read_text(encoding="ascii", errors="replace")
    key = re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.+?-----END [A-Z ]*PRIVATE KEY-----", text, re.DOTALL)
    cert = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, re.DOTALL)
    if not key or not cert:
        raise InputError(f"OAUTH_CERTIFICATE {path}: needs the private key and the certificate (PEM) in one file, "
                         "or a .pfx file (with OAUTH_CERTIFICATE_PASSWORD if it has one)")
    return {"private_key": key.group(0), "public_certificate": cert.group(0), "passphrase": password}


def _http_client(settings: Settings) -> Any:
    """requests, with SMTP_CA_FILE passed on every request: a Session's own `verify` loses to REQUESTS_CA_BUNDLE."""
    import functools

    import requests

    session = requests.Session()
    session.request = functools.partial(session.request, verify=_verify(settings), timeout=30)  # type: ignore[method-assign]
    session.mount("https://", requests.adapters.HTTPAdapter(max_retries=1))
    return session


def _certificate_error(settings: Settings, exc: Exception) -> InputError:
    return InputError(f"OAUTH_CERTIFICATE {settings.oauth_certificate}: cannot sign in with it ({type(exc).__name__}): "
                      "it must hold an RSA certificate and its private key (.pfx, or .pem with both), and "
                      "OAUTH_CERTIFICATE_PASSWORD its password if it has one")


def _host(settings: Settings) -> str:
    return urlparse(settings.oauth_authority or "").hostname or "the sign-in server"


def _resource_default(scopes: Sequence[str]) -> list[str]:
    """The application's scope for the resource of `scopes` (…/SMTP.Send -> …/.default)."""
    first = scopes[0] if scopes else SMTP_SCOPE
    return [first.rsplit("/", 1)[0] + "/.default"]


def _forget_app_tokens(app: Any, settings: Settings) -> None:
    import msal  # type: ignore[import-untyped]

    for token in list(app.token_cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN,
                                             query={"client_id": settings.oauth_client_id})):
        app.token_cache.remove_at(token)


@dataclass(frozen=True)
class LoggedOut:
    removed: list[str]  # the sign-ins taken off this computer
    damaged: str | None = None  # what was wrong with a cache that was removed as a whole
    left: tuple[str, ...] = ()  # files that could not be removed (another user's), with why


class SignIn:
    """One command's Microsoft 365 sign-in: the MSAL application (made on first use: making one asks the sign-in
    server), the token cache as read at that time, one refresh at a time, and a refusal that needs `newsletter
    login` remembered so that the other connections of the same send do not ask again."""

    def __init__(self, settings: Settings, command_timeout: float = COMMAND_TIMEOUT):
        self.settings = settings
        self.command_timeout = command_timeout  # for SMTP_OAUTH_TOKEN_COMMAND, when there is no Microsoft sign-in
        self.location = cache_location()
        self._cache: tuple[Any, CacheInfo] | None = None
        self._app: Any = None
        self._refused: SignInError | None = None
        self._lock = threading.Lock()  # one refresh at a time, even with several sending connections

    # The token getters the connections take (smtp.Connection: (settings, fresh); imap.Mailbox: (settings)):
    # the Microsoft 365 sign-in when OAUTH_CLIENT_ID is set, else SMTP_OAUTH_TOKEN_COMMAND's output.

    def smtp_token(self, _settings: Settings, fresh: bool = False) -> SecretStr:
        """For SMTP; `fresh`: a new token, not the cached one (the server refused it, or `doctor` tests)."""
        if not self.settings.oauth_client_id:
            return command_token(self.settings, self.command_timeout)
        return self.access_token((SMTP_SCOPE,), fresh=fresh)

    def imap_token(self, _settings: Settings, fresh: bool = False) -> SecretStr:
        """For IMAP (IMAP_SCOPE); `fresh` as for smtp_token."""
        if not self.settings.oauth_client_id:
            return command_token(self.settings, self.command_timeout)
        return self.access_token((IMAP_SCOPE,), fresh=fresh)

    def cache_info(self) -> CacheInfo:
        return self._token_cache()[1]

    def _token_cache(self) -> tuple[Any, CacheInfo]:
        if self._cache is None:
            self._cache = token_cache(self.location)
        return self._cache

    def _guard(self, exc: BaseException) -> CacheError | None:
        """The CacheError for a failure of the token cache (its data, its file or its lock), else None."""
        location = self.location
        if isinstance(exc, CacheProblem) or type(exc).__name__ == "LockError":
            return cache_error(exc, location)
        if isinstance(exc, OSError) and str(location.parent) in str(getattr(exc, "filename", "") or ""):
            return cache_error(exc, location)
        return None

    def _check_cache(self) -> Any:
        """The token cache, read once now so that a damaged or unreadable one is named before anything else."""
        cache, _ = self._token_cache()
        try:
            reload = getattr(cache, "_reload_if_necessary", None)
            if reload is not None:
                reload()
        except Exception as exc:
            error = self._guard(exc)
            if error is None:
                raise
            raise error from None
        return cache

    def app(self) -> Any:
        """The MSAL application for these settings (made once per session: making one asks the sign-in server)."""
        import msal
        import msal.authority  # type: ignore[import-untyped]
        import requests

        settings = self.settings
        if not settings.oauth_client_id or not settings.oauth_authority:
            raise InputError("OAUTH_CLIENT_ID and OAUTH_TENANT must be set in .env to sign in with Microsoft 365 "
                             "(see the README, Microsoft 365).")
        cache = self._check_cache()
        if self._app is not None:
            return self._app
        host = urlparse(settings.oauth_authority).hostname or ""
        options: dict[str, Any] = {
            "authority": settings.oauth_authority, "token_cache": cache, "http_client": _http_client(settings),
            # Instance discovery asks Microsoft whether an authority is genuine: only for Microsoft's own hosts.
            "instance_discovery": None if host in msal.authority.WELL_KNOWN_AUTHORITY_HOSTS else False,
        }
        try:
            if settings.unattended:
                app: Any = msal.ConfidentialClientApplication(settings.oauth_client_id,
                                                              client_credential=_credential(settings), **options)
            else:
                app = msal.PublicClientApplication(settings.oauth_client_id, **options)
        except requests.exceptions.SSLError:
            raise SignInError(f"The sign-in server {host} has a certificate this computer does not trust. If your "
                              "organisation uses its own certificate authority, set SMTP_CA_FILE to its certificate "
                              "(.pem).") from None
        except requests.exceptions.RequestException as exc:
            raise SignInError(f"Cannot reach the sign-in server {host} ({type(exc).__name__}): check the internet "
                              "connection (and OAUTH_AUTHORITY if it is set).") from None
        except ValueError as exc:
            if settings.oauth_certificate and not re.search(r"authority|tenant|OIDC", str(exc)):
                raise _certificate_error(settings, exc) from None
            raise SignInError(f"The sign-in server does not know the tenant in {settings.oauth_authority}: check "
                              f"OAUTH_TENANT (your organisation's domain or tenant id). ({str(exc)[:200]})") from None
        self._app = app
        return app

    def _call(self, action: Callable[[], Any]) -> Any:
        """Run an MSAL call, turning a network failure or an unusable certificate into a clear error."""
        import jwt
        import requests

        settings = self.settings
        try:
            return action()
        except requests.exceptions.RequestException as exc:
            raise SignInError(f"Cannot reach the sign-in server {_host(settings)} ({type(exc).__name__}): check "
                              "the internet connection.") from None
        except (CacheProblem, RuntimeError, OSError) as exc:
            error = self._guard(exc)
            if error is None:
                raise
            raise error from None
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            if settings.oauth_certificate:
                raise _certificate_error(settings, exc) from None
            raise

    def _accounts(self, app: Any) -> list[dict[str, Any]]:
        """The signed-in accounts, the one matching the mailbox first."""
        accounts = list(self._call(app.get_accounts))
        mailbox = self.settings.mailbox.lower()
        return sorted(accounts, key=lambda a: str(a.get("username", "")).lower() != mailbox)

    def access_token(self, scopes: Sequence[str] = (SMTP_SCOPE,), *, fresh: bool = False) -> SecretStr:
        """A valid access token for `scopes` (SMTP_SCOPE, IMAP_SCOPE), from the cache or refreshed silently.

        `fresh` asks the server for a new one even if the cached one has not expired (after the mail server
        refused it). Raises SignInError in plain words when a user must act (e.g. `newsletter login` again).
        """
        settings = self.settings
        app = self.app()
        with self._lock:
            if self._refused is not None:  # another connection of this run heard it: one refusal, not one each
                raise self._refused
            if settings.unattended:
                if fresh:  # the application's cached token is not asked for: `doctor` tests the secret itself
                    self._call(lambda: _forget_app_tokens(app, settings))
                result = self._call(lambda: app.acquire_token_for_client(scopes=_resource_default(scopes)))
            else:
                accounts = self._accounts(app)
                if not accounts:
                    raise SignInError(f"Nobody is signed in for sending: run `newsletter login` (signed in as "
                                      f"{settings.mailbox}).", relogin=True)
                result = self._call(lambda: app.acquire_token_silent_with_error(list(scopes), accounts[0],
                                                                               force_refresh=fresh))
                if result is None:
                    raise SignInError(f"The sign-in for {settings.mailbox} has no refresh token left: run "
                                      "`newsletter login` again.", relogin=True)
            protect(self.location)
        if "access_token" not in result:
            message, relogin = sign_in_error(result, settings, scopes)
            error = SignInError(message, relogin)
            if relogin:
                self._refused = error
            raise error
        return SecretStr(str(result["access_token"]))

    def start_login(self, scopes: Sequence[str] = (SMTP_SCOPE,)) -> DeviceCode:
        """Ask the sign-in server for a device code: the user opens the URL and types the code."""
        settings = self.settings
        if settings.unattended:
            raise InputError("OAUTH_CLIENT_SECRET or OAUTH_CERTIFICATE is set: the application signs in by itself, "
                             "no `newsletter login` needed. `newsletter doctor` tests it.")
        app = self.app()
        flow = self._call(lambda: app.initiate_device_flow(scopes=list(scopes)))
        if "user_code" not in flow:
            raise SignInError(sign_in_error(flow, settings, scopes)[0])
        return DeviceCode(str(flow["verification_uri"]), str(flow["user_code"]), float(flow["expires_at"]), flow,
                          tuple(scopes))

    def finish_login(self, device: DeviceCode) -> SignedIn:
        """Wait until the user has signed in (or the code expired); the tokens go into the token cache."""
        settings = self.settings
        app = self.app()
        result = self._call(lambda: app.acquire_token_by_device_flow(device.flow))
        protect(self.location)
        self._refused = None
        if "access_token" not in result:
            message, _ = sign_in_error(result, settings, device.scopes)
            raise SignInError(message)
        claims = result.get("id_token_claims") or {}
        username = str(claims.get("preferred_username") or claims.get("email") or settings.mailbox)
        return SignedIn(username, time.time())

    def status(self) -> list[SignedIn]:
        """Who is signed in with this app (the mailbox's account first), and when each sign-in was last renewed."""
        import msal

        app = self.app()
        out = []
        for account in self._accounts(app):
            query = {"home_account_id": account.get("home_account_id"), "client_id": self.settings.oauth_client_id}
            tokens = list(self._call(partial(app.token_cache.search, msal.TokenCache.CredentialType.REFRESH_TOKEN,
                                             query=query)))
            times = [float(t["last_modification_time"]) for t in tokens if t.get("last_modification_time")]
            if tokens:
                out.append(SignedIn(str(account.get("username", "")), max(times) if times else None))
        return out

    def logout(self) -> LoggedOut:
        """Remove this app's sign-ins from the token cache; the file goes when nothing is left in it. A cache that
        cannot be read (damaged, another user's, locked) is removed as a whole: it is of no use to anyone."""
        try:
            self._check_cache()
        except CacheError as exc:
            self._app = self._cache = None
            return LoggedOut([], exc.why, tuple(remove(self.location)))
        app = self.app()
        removed = []
        for account in self._accounts(app):
            self._call(partial(app.remove_account, account))
            removed.append(str(account.get("username", "")))
        if not self._call(app.get_accounts) and not self._call(lambda: _others_left(app)):
            self._app = self._cache = None
            return LoggedOut(removed, None, tuple(remove(self.location)))
        return LoggedOut(removed)


def _others_left(app: Any) -> bool:
    """Whether the cache still holds a refresh token (another app's sign-in, on this computer's account)."""
    import msal

    return any(True for _ in app.token_cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN))


def oauth_token(settings: Settings, fresh: bool = False) -> SecretStr:
    """An access token for SMTP when no sign-in session was handed over (a SignIn): a session for this one
    call. `fresh`: not the cached one (the server refused it)."""
    return SignIn(settings).smtp_token(settings, fresh)
