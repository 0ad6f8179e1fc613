"""Threat detection on string input: every string of a request's body (keys and values, at any
depth), query and path parameters. SQL injection and XSS by ``libinjection`` (the detector of
ModSecurity's core rule set), plus what it does not cover: script URIs and inline handlers, path
traversal, command injection, and strings over ``MAX_STRING_LENGTH``.

False positives cost as much as misses: the patterns below look for the structure of an attack
(a separator followed by a command and its arguments, ``../`` segments, a tag with a handler), not
for words, so ``O'Brien``, ``DROP-IN Café``, ``<3`` or ``Union Select Bakery`` pass. Both corpora
in ``tests/protection/corpus`` are run in the tests.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import libinjection
import msgspec
from litestar import Request
from litestar.exceptions import HTTPException
from litestar.params import QueryParameter

from api.json_depth import NotUtf8, TooDeep, decode_bounded
from api.protection.blocking import Blocker
from api.protection.clients import ClientResolver
from api.protection.guard import client_key
from api.protection.incidents import Incident
from api.threats import THREATS

__all__ = ["RequestScreener", "Threat", "find_threat", "strings_in"]


@dataclass(frozen=True)
class Threat:
    kind: str
    """sql_injection, xss, path_traversal, command_injection, oversized or too_deep."""
    where: str
    """Which input: ``body.comment``, ``query.limit``, ``path.event_id``."""
    sample: str


_XSS = re.compile(
    r"""(?:
        <\s*/?\s*(?:script|iframe|object|embed|svg|math|base|meta|link|style|frame|frameset|applet|form)\b
      | <[^>]*?\bon[a-z]{3,}\s*=
      | \b(?:javascript|vbscript|livescript):(?!\s)
      | \bdata\s*:\s*text/html
      | \bsrcdoc\s*=
      | \bexpression\s*\(
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_TRAVERSAL = re.compile(
    r"""(?:
        (?:^|[/\\])\.\.(?:[/\\]|$)
      | %2e%2e | %252e | \.\.%2f | \.\.%5c | %c0%ae | %c1%9c | \.\.;/
      | (?:^|[\s"'=/])/(?:etc/(?:passwd|shadow|hosts|group)|proc/self/|windows/win\.ini)
      | \b[a-z]:\\(?:windows|winnt|boot\.ini)
      | \x00 | %00
    )""",
    re.IGNORECASE | re.VERBOSE,
)
# Commands that are not English words: after a shell separator, any argument gives them away.
_TOOLS = (
    r"(?:rm|ls|whoami|uname|wget|curl|nc|ncat|netcat|bash|zsh|dash|ksh|python[23]?|perl|ruby|php|chmod|chown|"
    r"ping|nslookup|powershell|cmd(?:\.exe)?|shutdown|reboot|sudo|mkfifo|telnet|ssh|scp|base64|printenv|xargs|"
    r"awk|sed|nohup)"
)
# Commands that are also words ("; cat lovers"): only with an argument that looks like one.
_WORDS = r"(?:cat|id|echo|sleep|kill|touch|env|eval|exec|head|tail|more|less|find|tee|dig|sh|su)"
_COMMANDS = rf"(?:{_TOOLS}|{_WORDS})"
_SEPARATOR = r"(?:[;&|\n]|\|\||&&)\s*"
_COMMAND_INJECTION = re.compile(
    rf"""(?:
        {_SEPARATOR}{_TOOLS}(?=\s+\S|\s*(?:$|[;&|`)>]))
      | {_SEPARATOR}{_WORDS}(?=\s+[-/$~.\d'"]|\s*(?:$|[;&|`)>]))
      | {_SEPARATOR}{_COMMANDS}\b[^;&|\n]*?>>?\s*[/~]
      | \$\(\s*{_COMMANDS}\b[^)]*\)
      | `\s*{_COMMANDS}\b[^`]*`
      | \$\{{IFS\}} | \$IFS\b
      | >\s*/dev/(?:tcp|udp)/
    )""",
    re.IGNORECASE | re.VERBOSE,
)


# A quote closing the application's string, then a comment swallowing the rest of its query: the
# classic login bypass (``admin' #``), which libinjection leaves to context.
_SQL_COMMENT_BYPASS = re.compile(r"""['"]\s*\)?\s*(?:--|#|/\*)\s*$""")


# libinjection also fires on plain comparisons ("5 > 3 and 2 < 4"). An injection needs something
# that changes the query's structure: a quote, a comment, a statement break, an equality or a
# keyword; without any of them, its verdict is not taken.
_SQL_MARKERS = re.compile(
    r"""['"`;=#]|--|/\*|@@|\b(?:select|union|insert|update|delete|drop|exec|sleep|benchmark|waitfor|
    information_schema|load_file|outfile|xp_\w+|pg_sleep|extractvalue|concat|char|case\s+when)\b""",
    re.IGNORECASE | re.VERBOSE,
)


def _sql_injection(text: str) -> bool:
    if _SQL_COMMENT_BYPASS.search(text):
        return True
    return bool(libinjection.is_sql_injection(text)["is_sqli"]) and _SQL_MARKERS.search(text) is not None


def _decoded(value: str) -> str:
    """One round of URL decoding, so ``%3Cscript%3E`` is seen as what it would become."""
    if "%" not in value and "+" not in value:
        return value
    try:
        return urllib.parse.unquote_plus(value)
    except ValueError:
        return value


def _kind(value: str) -> str | None:
    for text in {value, _decoded(value)}:
        if _TRAVERSAL.search(text):
            return "path_traversal"
        if _COMMAND_INJECTION.search(text):
            return "command_injection"
        if _XSS.search(text) or libinjection.is_xss(text)["is_xss"]:
            return "xss"
        if _sql_injection(text):
            return "sql_injection"
    return None


def find_threat(value: str, where: str, max_length: int) -> Threat | None:
    """The threat one string carries, if any."""
    if len(value) > max_length:
        return Threat("oversized", where, value[:200])
    kind = _kind(value)
    return Threat(kind, where, value) if kind else None


def strings_in(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string inside a decoded JSON value (dict keys too), with where it is."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{where}.{key}" if isinstance(key, str) else where
            if isinstance(key, str):
                yield f"{where} (a key)", key
            yield from strings_in(item, name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings_in(item, f"{where}[{index}]")


class RequestScreener:
    """``before_request`` hook: refuses (400) a request carrying a threat in any string of its
    body, query or path parameters, and records it as a security incident against the client
    (which may block it). Routes with ``opt={"screen": False}`` (the signed webhook) are skipped."""

    def __init__(self, max_length: int, blocker: Blocker, clients: ClientResolver, max_depth: int = 64) -> None:
        self.max_length = max_length
        self.max_depth = max_depth
        self.blocker = blocker
        self.clients = clients
        self._declared: dict[Any, frozenset[str]] = {}

    async def __call__(self, request: Request[Any, Any, Any]) -> None:
        if request.route_handler.opt.get("screen", True) is False:
            return
        threat = self._in_parameters(request)
        if threat is None:
            try:
                body = await request.body()
            except HTTPException as exc:
                if exc.status_code == 413:
                    await self._incident(request, Threat("oversized", "body", "(request body over the limit)"))
                raise
            threat = self._in_body(request, body)
        if threat is not None:
            await self._incident(request, threat)
            raise HTTPException(
                status_code=400,
                detail=f"The request was refused: {threat.where} looks like {THREATS[threat.kind]}.",
                extra=[
                    {"key": threat.where, "message": f"refused as {threat.kind}", "source": threat.where.split(".")[0]}
                ],
            )
        unknown = self._unknown_query(request)
        if unknown is not None:
            raise HTTPException(
                status_code=400,
                detail=f"Unknown query parameter {unknown[:64]!r} for this route.",
                extra=[{"key": unknown[:64], "message": "unknown parameter", "source": "query"}],
            )

    def _unknown_query(self, request: Request[Any, Any, Any]) -> str | None:
        """A query parameter the route does not declare (only the API's own routes are strict)."""
        path = request.url.path
        if not path.startswith("/api/") or path.startswith("/api/schema"):
            return None
        handler = request.route_handler
        declared = self._declared.get(handler)
        if declared is None:
            declared = self._declared[handler] = frozenset(
                field.kwarg_definition.query or name
                for name, field in handler.parsed_fn_signature.parameters.items()
                if isinstance(field.kwarg_definition, QueryParameter)
            )
        return next((name for name in request.query_params if name not in declared), None)

    def _in_parameters(self, request: Request[Any, Any, Any]) -> Threat | None:
        for name, value in request.path_params.items():
            if isinstance(value, str) and (threat := find_threat(value, f"path.{name}", self.max_length)):
                return threat
        for name, value in request.query_params.multi_items():
            for where, text in (("query (a name)", name), (f"query.{name}", value)):
                if threat := find_threat(text, where, self.max_length):
                    return threat
        return None

    def _in_body(self, request: Request[Any, Any, Any], body: bytes) -> Threat | None:
        if not body:
            return None
        content_type = request.headers.get("content-type", "")
        if "application/x-www-form-urlencoded" in content_type:
            text = body.decode("utf-8", errors="replace")
            pairs = urllib.parse.parse_qsl(text, keep_blank_values=True)
            strings: Iterator[tuple[str, str]] = (
                item for name, value in pairs for item in (("body (a name)", name), (f"body.{name}", value))
            )
        else:
            try:
                decoded = decode_bounded(body, self.max_depth)
            except TooDeep:
                return Threat("too_deep", "body", f"(JSON nested deeper than {self.max_depth} levels)")
            except NotUtf8:  # the route's own decoding would not say so (msgspec raises UnicodeDecodeError)
                raise HTTPException(
                    status_code=400,
                    detail="The request body is not valid UTF-8; JSON must be sent as UTF-8 (RFC 8259).",
                ) from None
            except msgspec.DecodeError:
                return None  # not JSON: the route's own validation answers
            strings = strings_in(decoded, "body")
        for where, text in strings:
            if threat := find_threat(text, where, self.max_length):
                return threat
        return None

    async def _incident(self, request: Request[Any, Any, Any], threat: Threat) -> None:
        key, user_id, ip = client_key(request.scope, self.clients)
        incident = Incident(
            kind=threat.kind,
            route=str(request.scope.get("path_template") or request.url.path),
            method=request.method,
            user_id=user_id,
            client_ip=ip,
            sample=threat.sample,
            detail=f"in {threat.where}",
        )
        await self.blocker.incident(key, incident)
