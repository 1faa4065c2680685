"""HTTP plumbing every connector shares: one retrying session, timeouts, redaction, and
turning transport trouble into the engine's two destination errors.

Retries and back-off come from urllib3's ``Retry`` (told which statuses are transient)
rather than hand-written loops, so every connector retries the same way. The one thing
urllib3 does not do is refuse a Retry-After that is too long: it would sleep for up to
six hours inside a sync run. :class:`BoundedRetry` gives up instead, so the connector
raises :class:`DestinationUnavailable` and the engine plans the batch again next run.
"""

from __future__ import annotations

import logging
import re
from typing import Any, NamedTuple

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    InvalidHeader,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.util.retry import Retry

from destinations.base import DestinationConfigError, DestinationError, DestinationUnavailable

#: Statuses worth sending the same request again for (after back-off or Retry-After).
RETRY_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})
#: Final statuses that mean "not now" rather than "not this": the batch is retried next run.
#: 408 is not retried in-run (a receiver that timed out reading us is unlikely to do
#: better a second later) but is still no reason to reject the records.
UNAVAILABLE_STATUSES: frozenset[int] = RETRY_STATUSES | {408}

REDACTED = "[redacted]"

#: Longest platform error message kept in an outcome or exception.
MAX_ERROR_CHARS = 300

_EMAIL = re.compile(r"[\w.%+'\-]+@[\w\-]+(?:\.[\w\-]+)*")
#: 7+ digits, optionally led by +, with spaces, dashes or parentheses between them;
#: not glued to letters or digits on either side (so ids like "ab1234567" survive).
_PHONE = re.compile(r"(?<![\w+])\+?\(?[0-9](?:[ \-()]{0,2}[0-9]){6,}(?!\w)")


class Timeout(NamedTuple):
    """Connect and read timeouts in seconds. A tuple, so it is passed as ``timeout=`` as is."""

    connect: float = 5.0
    read: float = 30.0


DEFAULT_TIMEOUT = Timeout()


class BoundedRetry(Retry):
    """urllib3 ``Retry`` that gives up instead of honouring an over-long Retry-After.

    urllib3 sleeps for whatever Retry-After says (capped only at six hours). A sync run
    should not stall for minutes on one batch: past ``max_retry_after`` seconds we stop
    retrying and hand the final (429/503) response back to the connector.
    """

    #: Only these statuses make urllib3 retry merely because a Retry-After is present
    #: (urllib3's default also has 413, which for us means "batch too large": not transient).
    RETRY_AFTER_STATUS_CODES = frozenset({429, 503})

    def __init__(self, *args: Any, max_retry_after: float = 60.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_retry_after = max_retry_after

    def new(self, **kw: Any) -> BoundedRetry:
        """Carry ``max_retry_after`` over: urllib3 makes a new object per attempt."""
        kw.setdefault("max_retry_after", self.max_retry_after)
        return super().new(**kw)

    def get_retry_after(self, response: Any) -> float | None:
        """An unparseable Retry-After falls back to our own back-off instead of raising."""
        try:
            return super().get_retry_after(response)
        except InvalidHeader:
            return None

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> BoundedRetry:
        """Stop retrying when the server asks us to wait longer than we are willing to."""
        wait = self.get_retry_after(response) if response is not None else None
        if wait is not None and wait > self.max_retry_after:
            reason = ResponseError(f"Retry-After {wait:.0f}s exceeds max_retry_after {self.max_retry_after:.0f}s")
            raise MaxRetryError(_pool, url, reason)  # type: ignore[arg-type]
        return super().increment(method, url, response, error, _pool, _stacktrace)


def build_session(
    *,
    user_agent: str,
    max_retries: int = 4,
    backoff_factor: float = 0.5,
    max_retry_after: float = 60.0,
) -> requests.Session:
    """One session per connector: pooled connections plus a bounded, shared retry policy.

    Every method is retried, POST included: our sends are idempotent (upserts and
    removals keyed by record, and receivers de-duplicate by message id). The final
    response is returned even when it is still a 429/5xx (``raise_on_status=False``) so
    the connector can read the platform's error and say what happened.
    """
    retry = BoundedRetry(
        total=max_retries,
        connect=max_retries,
        read=max_retries,
        status=max_retries,
        other=0,  # TLS and similar errors do not heal by retrying
        allowed_methods=None,
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff_factor,
        backoff_max=max_retry_after,
        respect_retry_after_header=True,
        raise_on_status=False,
        max_retry_after=max_retry_after,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = user_agent
    return session


class _QuerySecretFilter(logging.Filter):
    """Blanks the values of named query parameters in a log record's message."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.pattern: re.Pattern[str] | None = None

    def add(self, names: tuple[str, ...]) -> None:
        self.names.update(names)
        alternatives = "|".join(re.escape(name) for name in sorted(self.names))
        self.pattern = re.compile(rf"(?<![\w])({alternatives})=[^&\s'\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if self.pattern is not None:
            message = record.getMessage()
            cleaned = self.pattern.sub(rf"\1={REDACTED}", message)
            if cleaned != message:
                record.msg, record.args = cleaned, ()
        return True


_QUERY_SECRETS = _QuerySecretFilter()


def hide_query_secrets(*names: str) -> None:
    """Keep the values of these query parameters out of urllib3's log (it logs the full URL of
    a request it retries): for platforms that take a credential in the query string, as Meta's
    Graph API takes ``access_token``."""
    logger = logging.getLogger("urllib3.connectionpool")
    _QUERY_SECRETS.add(names)
    if _QUERY_SECRETS not in logger.filters:
        logger.addFilter(_QUERY_SECRETS)


def redact(text: str, *extra: str) -> str:
    """Remove personal data from ``text`` before it reaches an exception, log or error row.

    Removes the ``extra`` literal strings (the record's own identifier values, which may
    not look like an email or phone at all), then anything shaped like an email address
    or a phone number.
    """
    for value in sorted({e for e in extra if e}, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    text = _EMAIL.sub(REDACTED, text)
    return _PHONE.sub(REDACTED, text)


def error_title(response: requests.Response, *extra: str) -> str:
    """The platform's own short error description from a JSON error body, redacted.

    Understands the shapes our platforms use: problem JSON ``title``/``detail``,
    ``error`` as a string or ``{message}``, and ``errors[0].{title,message,detail}``.
    A body that is not JSON gives "" (an HTML error page is noise, and may echo input).
    """
    try:
        body = response.json()
    except ValueError:  # requests' JSONDecodeError is one
        return ""
    title = _title_from(body)
    return redact(title, *extra)[:MAX_ERROR_CHARS] if title else ""


def _title_from(body: Any) -> str:
    """First non-empty message-like string in a decoded error body."""
    if isinstance(body, list) and body:
        return _title_from(body[0])
    if not isinstance(body, dict):
        return ""
    for key in ("title", "message", "error", "detail", "errors"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, (dict, list)) and (nested := _title_from(value)):
            return nested
    return ""


def attempts_made(response: requests.Response) -> int:
    """How many times urllib3 sent this request before settling on ``response``."""
    retries = getattr(response.raw, "retries", None)
    return len(retries.history) + 1 if isinstance(retries, Retry) else 1


def _with_title(status: int, title: str) -> str:
    return f"HTTP {status}: {title}" if title else f"HTTP {status}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def check_response(
    response: requests.Response,
    *,
    destination: str,
    credentials_hint: str,
    refused: str = "credentials",
    redact_values: tuple[str, ...] = (),
) -> None:
    """Raise the destination error a final non-2xx response means, or return.

    Returns for 2xx and for the 4xx statuses whose meaning is platform-specific (a
    rejected payload, an unknown list, a batch too large): the connector decides those.
    ``destination`` is a label like ``webhook destination 'crm'``.
    """
    status = response.status_code
    if 200 <= status < 300:
        return
    title = error_title(response, *redact_values)
    if status in (401, 403):
        raise DestinationConfigError(
            f"{destination} refused our {refused} ({_with_title(status, title)}): {credentials_hint}"
        )
    if 300 <= status < 400:
        raise DestinationConfigError(
            f"{destination} redirected us elsewhere ({_with_title(status, title)}): "
            "set its URL to the final address (requests are not re-sent to a redirect)"
        )
    if 400 <= status < 500 and status not in UNAVAILABLE_STATUSES:
        return
    raise unavailable_from_response(response, destination=destination, title=title)


def unavailable_from_response(
    response: requests.Response, *, destination: str, title: str = ""
) -> DestinationUnavailable:
    """Describe a final 429/5xx: status, the platform's words, attempts, and why we stopped."""
    status = response.status_code
    attempts = _plural(attempts_made(response), "attempt")
    retries = getattr(response.raw, "retries", None)
    limit = getattr(retries, "max_retry_after", None)
    wait = retries.get_retry_after(response.raw) if isinstance(retries, Retry) else None
    if limit is not None and wait is not None and wait > limit:
        return DestinationUnavailable(
            f"{destination} is throttling us ({_with_title(status, title)}) and asked us to wait "
            f"{wait:.0f}s (Retry-After), longer than max_retry_after={limit:.0f}s; gave up after "
            f"{attempts}. The batch will be sent again next run."
        )
    return DestinationUnavailable(
        f"{destination} is unavailable ({_with_title(status, title)}) after {attempts}. "
        "The batch will be sent again next run."
    )


def error_from_exception(exc: requests.RequestException, *, destination: str, max_attempts: int) -> DestinationError:
    """Turn a transport failure into a destination error, without the URL or request body.

    ``max_attempts`` is the connector's retry budget plus one: a transport error only
    escapes urllib3 once that budget is spent. The exception's own text is not used (it
    carries the full URL, which may embed a token); only its kind is named.
    """
    if isinstance(
        exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)
    ):
        return DestinationConfigError(f"{destination} has an unusable URL ({type(exc).__name__}): check its url option")
    cause = _root_cause(exc)
    what, retried = _describe_cause(cause)
    attempts = _plural(max_attempts, "attempt") if retried else "1 attempt (not retried)"
    return DestinationUnavailable(
        f"{destination} is unavailable: {what} ({type(cause).__name__}) after {attempts}. "
        "The batch will be sent again next run."
    )


def _root_cause(exc: BaseException) -> BaseException:
    """The urllib3 error inside requests' wrapper (``MaxRetryError.reason`` if retried)."""
    inner: BaseException = exc
    if exc.args and isinstance(exc.args[0], BaseException):
        inner = exc.args[0]
    if isinstance(inner, MaxRetryError) and inner.reason is not None:
        inner = inner.reason
    return inner


def _describe_cause(cause: BaseException) -> tuple[str, bool]:
    """A plain-words description of a transport error, and whether urllib3 retries it."""
    if isinstance(cause, NewConnectionError):
        return "could not connect", True
    if isinstance(cause, ConnectTimeoutError):
        return "connecting timed out", True
    if isinstance(cause, (ReadTimeoutError, requests.exceptions.ReadTimeout)):
        return "timed out waiting for a response", True
    if isinstance(cause, ProtocolError):
        return "the connection dropped without a response", True
    return "the request failed", False
