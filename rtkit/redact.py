"""Secrets in endpoint URLs, kept out of everything rtkit stores, shows or logs.

Providers put keys in the URL itself: ``wss://user:password@host``,
``?apikey=…``, and path tokens (Infura ``/v3/<project id>``, Alchemy
``/v2/<key>``). A collector connects with the URL as given, but ``runs.url``,
``.status.reason``, ``.last_error``, ``stats``, ``repr`` and the ``rtkit`` log
carry it redacted: user info, query values and token-like path segments
become ``***``; the scheme, host, port, the other path segments and the query
keys stay, so the endpoint is still recognisable.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import weakref
from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit

REDACTED = "***"
#: a path segment of at least this many URL-safe characters, with letters and
#: digits, is taken for a key (Infura's 32 hex digits, Alchemy's 32 characters)
TOKEN_MIN_CHARS = 16
#: a segment this long is a key even without digits
_TOKEN_ANY_CHARS = 32
#: a password or token shorter than this is removed only inside a URL; as free text
#: it would blank out ordinary words (so would a user name or a short query value,
#: which are removed only inside a URL or after their ``key=``)
_MIN_FREE_TEXT_CHARS = 4

_TOKEN = re.compile(r"[A-Za-z0-9_\-.~+=%]+")
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>\\`]+")
#: query keys whose values are credentials whatever they look like
_CREDENTIAL_KEY = re.compile(r"key|token|secret|auth|pass|sig|cred|session|jwt|bearer|private",
                             re.IGNORECASE)
_TRUNCATED = "…"  # what rtkit.pipeline.quote appends to text it cut


def looks_like_token(segment: str) -> bool:
    """Whether a path segment is probably a key rather than a name (``v3``, ``ws``)."""
    if len(segment) < TOKEN_MIN_CHARS or not _TOKEN.fullmatch(segment):
        return False
    letters = any(c.isalpha() for c in segment)
    digits = any(c.isdigit() for c in segment)
    return (letters and digits) or len(segment) >= _TOKEN_ANY_CHARS


def redact_url(url):
    """``url`` with its user info, query values, token-like path segments and
    fragment replaced by ``***``; anything that is not a string comes back as it is.

    ``wss://u:p@mainnet.infura.io/ws/v3/0123…cdef?apikey=K`` →
    ``wss://***@mainnet.infura.io/ws/v3/***?apikey=***``
    """
    if not isinstance(url, str):
        return url
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:  # not parseable: keep only what precedes the host
        scheme, sep, _ = url.partition("://")
        return f"{scheme}{sep}{REDACTED}" if sep else REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    path = "/".join(_redact_segment(s) for s in parts.path.split("/"))
    query = "&".join(_redact_query_item(item) for item in parts.query.split("&")) \
        if parts.query else ""
    fragment = REDACTED if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, path, query, fragment))


def _redact_segment(segment: str) -> str:
    """A path segment with a token hidden, and the values of its ``;name=value``
    parameters (``/ws;token=…``) too."""
    head, *params = segment.split(";")
    head = REDACTED if looks_like_token(head) else head
    return ";".join([head, *(_redact_query_item(p) for p in params)])


def _parameters(parts) -> list[str]:
    """Every ``name=value`` item of a URL: path parameters (after ``;`` in a segment),
    query items split at ``&`` and also at ``;`` (a separator to many servers), the
    query items as split at ``&`` alone, and the fragment."""
    path_params = [p for s in parts.path.split("/") for p in s.split(";")[1:]]
    query = parts.query.split("&") + re.split("[&;]", parts.query) if parts.query else []
    return [*path_params, *query, parts.fragment]


def _redact_query_item(item: str) -> str:
    key, sep, value = item.partition("=")
    if sep:
        return f"{key}={REDACTED}" if value else item
    return REDACTED if item else item


def url_secrets(url: str) -> tuple[set[str], set[str]]:
    """The parts of ``url`` that :func:`redact_url` hides, as written and percent-decoded:
    those that are unmistakable anywhere (the password, path tokens, token-like values,
    the value of a ``key``/``token``/``secret``/``auth``… parameter) and
    the others (a user name, a short query value), which only count in context."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return {url}, set()
    strong: list[str] = []
    weak: list[str] = []
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        user, _, password = userinfo.partition(":")
        strong += [userinfo, password]
        weak.append(user)
    strong += [s.split(";")[0] for s in parts.path.split("/")
               if looks_like_token(s.split(";")[0])]
    for item in _parameters(parts):
        key, sep, value = item.partition("=")
        value = value if sep else key
        secret = looks_like_token(value) or (sep and _CREDENTIAL_KEY.search(key))
        (strong if secret else weak).append(value)

    def forms(found: list[str]) -> set[str]:
        # as written, percent-decoded, and as a server decodes a query value (+ is a space)
        return {form for s in found if s for form in (s, unquote(s), unquote_plus(s))}

    return forms(strong), forms(weak) - forms(strong)


class Redactor:
    """Removes one URL's secrets from any text: that URL, other URLs in the text, the
    secrets themselves wherever they appear (an error echoing the request line), and
    the start of a secret where untrusted text was cut short."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.redacted_url = redact_url(url)
        strong, weak = url_secrets(url) if isinstance(url, str) else (set(), set())
        self._secrets = sorted(strong | weak, key=len, reverse=True)
        self._free_text = sorted((s for s in strong if len(s) >= _MIN_FREE_TEXT_CHARS),
                                 key=len, reverse=True)
        keys: set[str] = set()
        with contextlib.suppress(ValueError, TypeError):
            keys = {item.partition("=")[0] for item in _parameters(urlsplit(url))
                    if item.partition("=")[0] and "=" in item} if isinstance(url, str) else set()
        self._after_key = re.compile(
            r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, sorted(keys))) + r")=[^&\s'\"<>…]+"
        ) if keys else None

    def __call__(self, text):
        """``text`` without this URL's secrets (non-strings and empty text as they are)."""
        if not text or not isinstance(text, str):
            return text
        text = text.replace(self.url, self.redacted_url)
        text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
        if self._after_key is not None:
            text = self._after_key.sub(rf"\1={REDACTED}", text)
        for secret in self._free_text:
            text = text.replace(secret, REDACTED)
        if text.endswith(_TRUNCATED):
            text = self._cut_secret_at_end(text[: -len(_TRUNCATED)]) + _TRUNCATED
        return text

    def _cut_secret_at_end(self, text: str) -> str:
        for secret in self._secrets:
            for n in range(len(secret) - 1, _MIN_FREE_TEXT_CHARS - 1, -1):
                if text.endswith(secret[:n]):
                    return text[:-n] + REDACTED
        return text


class _LogFilter(logging.Filter):
    """Redacts the URLs of every live collector from the ``rtkit`` logger's records,
    tracebacks included: a log line never shows a key, whoever wrote it."""

    def __init__(self) -> None:
        super().__init__()
        self._redactors: weakref.WeakSet[Redactor] = weakref.WeakSet()
        self._lock = threading.Lock()

    def add(self, redactor: Redactor) -> None:
        with self._lock:
            self._redactors.add(redactor)

    def _clean(self, text: str) -> str:
        with self._lock:
            redactors = list(self._redactors)
        text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
        for redactor in redactors:
            text = redactor(text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as usual
            return True
        clean = self._clean(message)
        if clean != message:  # otherwise the record is left as it came
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # the traceback as the handler would write it, set here only when it held a key
            text = logging.Formatter().formatException(record.exc_info)
            clean = self._clean(text)
            if clean != text:
                record.exc_text = clean
        elif record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        return True


_log_filter = _LogFilter()
logging.getLogger("rtkit").addFilter(_log_filter)


def redactor_for(url: str) -> Redactor:
    """A :class:`Redactor` for ``url``, also applied to the ``rtkit`` log while it lives."""
    redactor = Redactor(url)
    _log_filter.add(redactor)
    return redactor
