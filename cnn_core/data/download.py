"""One resumable HTTP download with a checksum, that never saves a web page as data.

The file grows as ``NAME.part`` beside its destination; a later call continues it with an
HTTP ``Range`` request (a server that ignores the range makes it start over), and only a
complete file whose MD5 matches is renamed to ``NAME``. A response that is an HTML page where
a file should be (Google Drive's quota, virus-scan and sign-in pages) is read, named in plain
words and never written: :class:`HtmlInsteadOfFile`. Progress goes to a callback
``(what, done, total)`` in bytes.
"""

from __future__ import annotations

import errno
import hashlib
import html
import http.client
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..errors import DataError

CHUNK = 1 << 16
TIMEOUT_S = 60
USER_AGENT = "cnn-lab (CelebA fetch)"
HTML_KINDS = (  # (what the page says, in lower case) -> plain words
    (("quota", "too many users"), "daily quota reached"),
    (("virus scan", "can't scan this file for viruses", "cannot scan"), "virus-scan warning page"),
    (("accounts.google.com", "sign in", "servicelogin"), "sign-in required"),
)


class SourceFailed(DataError):
    """This source cannot deliver the file now (try another); the message says why."""


class HtmlInsteadOfFile(SourceFailed):
    """The server sent a web page where a file should be; ``kind`` says which page."""

    def __init__(self, message: str, kind: str, page: str):
        super().__init__(message)
        self.kind, self.page = kind, page


def html_kind(page: str) -> str:
    """What an HTML page sent instead of a file is, in plain words."""
    text = page.lower()
    for needles, kind in HTML_KINDS:
        if any(n in text for n in needles):
            return kind
    return "a web page instead of the file"


def confirm_url(page: str, base: str) -> str | None:
    """The download link behind a virus-scan page's form (its action and hidden fields)."""
    form = re.search(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', page, re.S | re.I)
    if not form:
        return None
    fields = re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.group(2), re.I)
    action = urllib.parse.urljoin(base, html.unescape(form.group(1)))
    return f"{action}?{urllib.parse.urlencode([(k, html.unescape(v)) for k, v in fields])}"


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _open(url: str, start: int) -> http.client.HTTPResponse:
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # the part is already whole
            raise
        raise SourceFailed(f"the server answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceFailed(f"cannot reach {urllib.parse.urlsplit(url).netloc}: {reason}") from None


def _check_space(folder: Path, needed: int, name: str) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise DataError(
            f"not enough space for {name} in {folder}: {needed / 1e9:.2f} GB needed, "
            f"{free / 1e9:.2f} GB free"
        )


def download(
    url: str,
    dest: Path,
    md5: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    follow_confirm: bool = True,
) -> Path:
    """Fetch ``url`` to ``dest`` (resuming ``dest.part``); ``dest`` is returned as soon as it
    exists (finished files are never fetched again)."""
    if dest.is_file():
        return dest
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.is_file() else 0
    try:
        response = _open(url, start)
    except urllib.error.HTTPError:  # 416: nothing left to fetch
        response = None
    if response is not None:
        with response:
            kind = response.headers.get_content_type()
            first = response.read(CHUNK)
            if kind == "text/html" or first.lstrip()[:15].lower().startswith(
                (b"<!doctype", b"<html")
            ):
                page = (first + response.read(1 << 20)).decode("utf-8", "replace")
                follow = confirm_url(page, response.geturl()) if follow_confirm else None
                if follow and html_kind(page) == "virus-scan warning page":
                    response.close()
                    return download(follow, dest, md5, progress, follow_confirm=False)
                what = html_kind(page)
                raise HtmlInsteadOfFile(f"{what} ({dest.name})", what, page)
            resumed = response.status == 206 and start > 0
            length = int(response.headers.get("Content-Length") or 0)
            total = (start if resumed else 0) + length
            _check_space(dest.parent, length, dest.name)
            _write(response, first, part, resumed, total, dest.name, progress)
    if md5 and (actual := md5_of(part)) != md5:
        part.unlink()
        raise SourceFailed(
            f"{dest.name}: checksum mismatch (md5 {actual}, expected {md5}): the download was "
            "damaged or is not the published file; it was deleted"
        )
    part.replace(dest)
    return dest


def _write(response, first: bytes, part: Path, resumed: bool, total: int, name: str, progress):
    try:
        with open(part, "ab" if resumed else "wb") as out:
            done = out.tell()
            block = first
            while block:
                out.write(block)
                done += len(block)
                if progress:
                    progress(name, done, total)
                block = response.read(CHUNK)
    except (OSError, http.client.HTTPException) as exc:
        if getattr(exc, "errno", None) == errno.ENOSPC:
            raise DataError(f"no space left on the device while writing {part}") from None
        raise SourceFailed(f"{name}: the download broke off ({exc}); run again to resume") from None
    if total and done < total:
        raise SourceFailed(
            f"{name}: the download broke off at {done:,} of {total:,} bytes; run again to resume"
        )
