"""GET /demo: a page to try the endpoint in a browser (`static/demo.html`, plain HTML and
JavaScript, no build step, nothing fetched from elsewhere).

The page is one file with one inline <script> and one inline <style>. Its
Content-Security-Policy allows exactly those two blocks by their SHA-256 hashes (no
'unsafe-inline'), requests to this server only, and media from blob: URLs (the audio the
user picked or recorded, played in the page). The page itself carries no data and needs no
token; it sends the token typed into it as a bearer token on POST /.
"""
from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

PAGE = Path(__file__).resolve().parent / "static" / "demo.html"
_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.S)


def inline_hashes(html: str) -> dict[str, list[str]]:
    """{'script': [...], 'style': [...]}: CSP hash sources of the page's inline blocks."""
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for tag, body in _INLINE.findall(html):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
        hashes[tag].append(f"'sha256-{digest}'")
    return hashes


def content_security_policy(html: str) -> str:
    hashes = inline_hashes(html)
    return "; ".join([
        "default-src 'self'",
        "script-src " + (" ".join(hashes["script"]) or "'none'"),
        "style-src " + (" ".join(hashes["style"]) or "'none'"),
        "media-src blob:",
        "connect-src 'self'",
        "img-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])


@lru_cache(maxsize=1)
def _page() -> tuple[bytes, dict[str, str]]:
    html = PAGE.read_text(encoding="utf-8")
    headers = {
        "Content-Security-Policy": content_security_policy(html),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    return html.encode("utf-8"), headers


async def demo(request: Request) -> Response:
    body, headers = _page()
    return HTMLResponse(body, headers=headers)


ROUTES = [Route("/demo", demo, methods=["GET"])]
