"""`newsletter check --online`: fetch every link (HEAD, then GET) and report dead pages, timeouts, redirects."""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from newsletter_cli.check.base import Context
from newsletter_cli.check.links import ImageRef, Link, url_problem
from newsletter_cli.compose.model import is_web_address
from newsletter_cli.errors import Diagnostic, Severity

MAX_WORKERS = 4  # be gentle with the (often small) websites of members
MAX_REDIRECTS = 10
USER_AGENT = "Mozilla/5.0 (compatible; newsletter-check/0.1; link check before sending a newsletter)"
REDIRECT_CODES = (301, 302, 303, 307, 308)
PERMANENT_CODES = (301, 308)
GONE_CODES = (404, 410)
NO_NAME = "the website name does not exist (or there is no internet connection)"


@dataclass
class Fetched:
    """What happened when a link was followed."""

    url: str
    status: int | None = None  # of the final answer
    reason: str = ""
    redirects: list[tuple[int, str]] = field(default_factory=list)  # (status, next URL) per hop
    error: str = ""  # why no answer came: "timeout" or a description

    @property
    def final_url(self) -> str:
        return self.redirects[-1][1] if self.redirects else self.url


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects come back as HTTPError, so that each hop can be recorded."""

    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def _opener(url: str) -> urllib.request.OpenerDirector:
    host = urlsplit(url).hostname or ""
    proxies = urllib.request.ProxyHandler({} if host in ("localhost", "127.0.0.1", "::1") else None)
    return urllib.request.build_opener(proxies, _NoRedirect())


def _follow(url: str, method: str, timeout: float) -> Fetched:
    """One method, following redirects by hand."""
    result = Fetched(url)
    current, seen = url, {url}
    for _ in range(MAX_REDIRECTS + 1):
        request = urllib.request.Request(current, method=method, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
        try:
            with _opener(current).open(request, timeout=timeout) as response:
                if method == "GET":
                    response.read(1024)
                result.status, result.reason = response.status, response.reason
                return result
        except urllib.error.HTTPError as exc:
            location = exc.headers.get("Location") if exc.headers else None
            exc.close()
            if exc.code in REDIRECT_CODES and location:
                current = urljoin(current, location)
                result.redirects.append((exc.code, current))
                if current in seen:
                    result.error = "the redirects go round in a circle"
                    return result
                seen.add(current)
                method = "GET" if exc.code == 303 else method
                continue
            result.status, result.reason = exc.code, str(exc.reason)
            return result
        except TimeoutError:
            result.error = "timeout"
            return result
        except urllib.error.URLError as exc:
            result.error = _describe(exc.reason)
            return result
        except (OSError, ValueError, http.client.HTTPException) as exc:
            result.error = f"the connection failed ({exc.__class__.__name__})"
            return result
    result.error = f"more than {MAX_REDIRECTS} redirects"
    return result


def _describe(reason: object) -> str:
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "timeout"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"the site's security certificate is not valid ({reason.verify_message})"
    if isinstance(reason, socket.gaierror):
        return NO_NAME
    if isinstance(reason, ConnectionRefusedError):
        return "the site refused the connection"
    return f"the site cannot be reached ({reason})"


def fetch(url: str, timeout: float) -> Fetched:
    """HEAD first (cheap); GET when the site does not answer HEAD properly."""
    result = _follow(url, "HEAD", timeout)
    if result.error == "timeout":
        return result
    if result.error or (result.status or 0) >= 400:
        return _follow(url, "GET", timeout)
    return result


def fetch_all(urls: list[str], timeout: float) -> dict[str, Fetched]:
    """Each URL once, a few at a time."""
    if not urls:
        return {}
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(urls))) as pool:
        return dict(zip(urls, pool.map(lambda u: fetch(u, timeout), urls)))


def check_online(ctx: Context, found: Sequence[Link], images: Sequence[ImageRef] = (), *,
                 timeout: float = 10.0) -> list[Diagnostic]:
    """Fetch every web link and web image of the edition and the theme's website; report what a reader meets."""
    places: dict[str, list[Diagnostic]] = {}
    nouns: dict[str, str] = {}
    for link in found:
        if is_web_address(link.url) and not url_problem(link.url):
            places.setdefault(link.url, []).append(ctx.at("warning", link.path, "", offset=link.offset))
    for image in images:
        if is_web_address(image.src) and not url_problem(image.src):
            path = image.path if image.in_text else (*image.path, "src")
            places.setdefault(image.src, []).append(ctx.at("warning", path, "", offset=image.offset))
            nouns.setdefault(image.src, "image")
    website = ctx.theme.website
    if not url_problem(website):
        places.setdefault(website, []).append(ctx.for_theme("warning", "website", ""))
    results = []
    fetched_all = fetch_all(list(places), timeout)
    if len(fetched_all) > 1 and all(f.error == NO_NAME for f in fetched_all.values()):
        return [Diagnostic("error", ctx.file, None, "", "no website could be found, not one: is this computer "
                           "connected to the internet?", "check the connection, or run the check without --online",
                           "link-online")]
    for url, fetched in fetched_all.items():
        severity, message, fix = judge(fetched, timeout, nouns.get(url, "link"))
        if not message:
            continue
        first, *others = places[url]
        also = sorted({d.line for d in others if d.line and d.line != first.line})
        if also:
            message += f" (the same link is also on line{'s' if len(also) > 1 else ''} {', '.join(map(str, also))})"
        results.append(Diagnostic(severity, first.file, first.line, first.where, message, fix, "link-online"))
    return results


def judge(fetched: Fetched, timeout: float, noun: str = "link") -> tuple[Severity, str, str]:
    """(severity, message, fix) for one fetched link or image; message "" when all is well."""
    url = fetched.url
    if fetched.error == "timeout":
        return ("warning", f"the {noun} {url} did not answer within {timeout:g} seconds",
                "open it in a browser; if it is slow for you too, link to another page")
    if fetched.error:
        return "error", f"the {noun} {url} does not work: {fetched.error}", f"correct or remove the {noun}"
    status = fetched.status or 0
    via = f" (after redirects to {fetched.final_url})" if fetched.redirects else ""
    if status in GONE_CODES:
        return ("error", f"the {noun} {url} is not there: the site says it does not exist ({status} "
                f"{fetched.reason}){via}", f"find the {noun}'s new address on the website, or remove it")
    if status >= 500:
        return ("error", f"the {noun} {url} gives a server error ({status} {fetched.reason}){via}",
                "try again later; if it stays broken, link to another page")
    if status >= 400:
        return ("warning", f"the site refused the check of {url} ({status} {fetched.reason}){via}",
                "open the link in a browser to be sure it works")
    permanent = any(code in PERMANENT_CODES for code, _ in fetched.redirects)
    if len(fetched.redirects) >= 2 or permanent:
        hops = len(fetched.redirects)
        return ("warning", f"the {noun} {url} is redirected ({hops} step{'s' if hops > 1 else ''}) to "
                f"{fetched.final_url}", f"link directly to {fetched.final_url}")
    return "warning", "", ""  # no message: nothing to report
