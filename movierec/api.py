"""What every endpoint of the REST API shares: error body, throttles, pagination, permissions.

Every error answer (4xx and 5xx, including a body too large and an unexpected server error)
has one shape, decided here once::

    {"error": {"code": "invalid", "message": "score: Ensure ...", "fields": {"score": ["..."]}}}

``code`` is a stable machine-readable word (DRF's error codes: ``invalid``, ``not_found``,
``not_authenticated``, ``authentication_failed``, ``permission_denied``, ``throttled``,
``method_not_allowed``, ``parse_error``, ...), ``message`` a sentence for people, ``fields`` maps
each offending input field (``ratings[2].score`` for nested input) to its messages; it is empty
when the error is not about one field. Outside /api/ the same errors are the site's own pages
(templates/400.html, 403.html, 404.html, 500.html).
"""
import binascii
import copy
import threading
import time
import uuid
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models.signals import post_delete, post_save
from django.http import Http404, JsonResponse
from django.utils import timezone
from django.views import defaults
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox import auth as knox_auth
from knox.crypto import hash_token
from knox.signals import token_expired
from rest_framework import exceptions, parsers, permissions, serializers, throttling
from rest_framework.pagination import PageNumberPagination
from rest_framework.settings import api_settings

from movierec.cache_backends import REDIS_ERRORS, redis_guard


# --- Errors ------------------------------------------------------------------------------------


def api_exception_handler(exc, context):
    """DRF's exception handler, with Django's ValidationError understood and the body reshaped."""
    # Imported here: rest_framework.views imports this module's throttles while it loads.
    from rest_framework.views import exception_handler

    if isinstance(exc, DjangoValidationError):
        # Services raise Django's ValidationError; to a client it is a 400 like any bad input.
        exc = exceptions.ValidationError(serializers.as_serializer_error(exc))
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = exception_handler(exc, context)
    if response is not None:
        response.data = {"error": error_body(exc)}
    return response


class RequestTooLarge(exceptions.APIException):
    """413: the body is over DATA_UPLOAD_MAX_MEMORY_SIZE (Django refuses to read more)."""

    status_code = 413
    default_code = "too_large"

    def __init__(self):
        super().__init__(f"The request body is larger than the {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes allowed.")


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with input nested too deeply for Python's parser refused as a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the document is nested too deeply.")


def error_body(exc: exceptions.APIException) -> dict:
    """The inner ``error`` object for one API exception."""
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten_field_errors(exc.detail)
        non_field = fields.pop(api_settings.NON_FIELD_ERRORS_KEY, [])
        if non_field:
            message = " ".join(non_field)
        elif fields:
            message = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in fields.items())
        else:
            message = "Invalid input."
        return {"code": "invalid", "message": message, "fields": fields}
    codes = exc.get_codes()
    return {
        "code": codes if isinstance(codes, str) else exc.default_code,
        "message": str(exc.detail),
        "fields": {},
    }


def _flatten_field_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """{"ratings": [{}, {"score": ["bad"]}]} -> {"ratings[1].score": ["bad"]}."""
    if isinstance(detail, dict):
        flat = {}
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                name = prefix  # errors about a nested object as a whole belong to the object's field
            elif isinstance(key, int):
                name = f"{prefix}[{key}]"  # DRF reports some list items by index
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            flat.update(_flatten_field_errors(value, name))
        return flat
    if isinstance(detail, list) and any(isinstance(item, (dict, list)) for item in detail):
        flat = {}
        for index, item in enumerate(detail):
            flat.update(_flatten_field_errors(item, f"{prefix}[{index}]"))
        return flat
    messages = [str(item) for item in detail] if isinstance(detail, list) else [str(detail)]
    key = prefix or api_settings.NON_FIELD_ERRORS_KEY
    return {key: messages} if messages else {}


# --- Strict input fields ----------------------------------------------------------------------


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """An object's id: a whole number or its digits as text; never ``true`` (1) nor ``1.5`` (1)."""

    def to_internal_value(self, data):
        is_number = isinstance(data, int) and not isinstance(data, bool)
        is_digits = isinstance(data, str) and data.isascii() and data.isdigit()
        if not (is_number or is_digits):
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A number; ``true`` and ``false`` are refused (DRF's FloatField reads them as 1.0 and 0.0)."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


# --- Throttling --------------------------------------------------------------------------------


# DRF's sliding window (the times of the requests within the window; full: refused), kept as a
# sorted set in Redis and checked and updated in one round trip. DRF's own way reads the whole
# list of times and writes it back: two round trips and a list that grows with the rate.
_SLIDING_WINDOW = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  return {0, count, redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]}
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(window))
return {1, count + 1, ARGV[1]}
"""


@lru_cache(maxsize=4)
def _sliding_window_script(client):
    return client.register_script(_SLIDING_WINDOW)


class _RateFromSettingsMixin:
    """Read the rate at request time: DRF reads it once at import, so overrides would not apply.

    On Redis, one round trip a request (_SLIDING_WINDOW); without Redis (locmem), DRF's own way.
    Either way a Redis outage lets requests through (movierec.cache_backends).
    """

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        backend = getattr(self.cache, "_cache", None)
        if self.rate is None or not hasattr(backend, "get_client"):
            return super().allow_request(request, view)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        try:
            with redis_guard():
                key = self.cache.make_key(self.key)
                allowed, count, oldest = _sliding_window_script(backend.get_client(key, write=True))(
                    keys=[key], args=[repr(self.now), self.duration, self.num_requests, f"{self.now!r}:{uuid.uuid4().hex}"])
        except REDIS_ERRORS:
            return True
        # What DRF's wait() reads: as many times as requests in the window, the oldest last.
        self.history = [float(oldest)] * int(count)
        return True if allowed else self.throttle_failure()

    def window(self, request, view) -> tuple[str, list] | None:
        """(Redis key, ARGV[1:4]) of this throttle's _SLIDING_WINDOW check of ``request``, or None
        when it does not limit the request (no rate, or not its kind of client): for a caller that
        runs the same check inside a script of its own (recommendations.cache.read_answer), so
        counting the request costs no round trip of its own. Only with Redis (see on_redis)."""
        if self.rate is None:
            return None
        key = self.get_cache_key(request, view)
        if key is None:
            return None
        now = self.timer()
        return self.cache.make_key(key), [repr(now), self.duration, self.num_requests, f"{now!r}:{uuid.uuid4().hex}"]

    @property
    def on_redis(self) -> bool:
        return hasattr(getattr(self.cache, "_cache", None), "get_client")


class AnonThrottle(_RateFromSettingsMixin, throttling.AnonRateThrottle):
    """Anonymous clients, per IP address (scope ``anon``)."""


class UserThrottle(_RateFromSettingsMixin, throttling.UserRateThrottle):
    """Signed-in clients, per user (scope ``user``)."""


class LoginThrottle(_RateFromSettingsMixin, throttling.AnonRateThrottle):
    """Attempts to sign in for a token, per IP address whoever is signed in (scope ``login``)."""

    scope = "login"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


# --- Pagination and permissions ------------------------------------------------------------------


class Pagination(PageNumberPagination):
    """?page=N&page_size=M; nonsense in either is a 400 (DRF would quietly use the default)."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(self, queryset, request, view=None):
        query = _PaginationQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["maximum"] = self.max_page_size
                parameter["description"] = f"Number of results per page (default {self.page_size})."
        return parameters


class _PaginationQuery(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(min_value=1, max_value=Pagination.max_page_size, required=False)


class IsStaffOrReadOnly(permissions.BasePermission):
    """Anyone may read; only staff may write (the catalogue)."""

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return True
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


# --- Authentication ------------------------------------------------------------------------------


class TokenAuthentication(knox_auth.TokenAuthentication):
    """knox's token authentication in one query: knox also reads all of the user's other tokens on
    every request to delete the expired ones, which accounts.services.issue_api_token already
    does at each sign-in (and the profile page lists only live ones). An expired token is still
    refused and deleted.

    A read (GET, HEAD, OPTIONS) whose token knox accepted in this process less than
    RECENT_TOKEN_SECONDS ago is let in without asking again (RecentTokens): a token revoked or
    signed out elsewhere still reads for at most that long in the other worker processes; the
    process that deletes it forgets it at once (but for a request of another of its threads that
    knox was answering at that moment: at most that long too). A write always asks knox."""

    def authenticate(self, request):
        self._reads = request.method in permissions.SAFE_METHODS
        return super().authenticate(request)

    def authenticate_credentials(self, token: bytes):
        if not getattr(self, "_reads", False):
            return super().authenticate_credentials(token)
        try:
            digest = hash_token(token.decode("utf-8"))
        except (TypeError, ValueError, binascii.Error):
            return super().authenticate_credentials(token)  # knox refuses it its own way
        found = recent_tokens.get(digest)
        if found is None:
            found = super().authenticate_credentials(token)
            recent_tokens.remember(digest, *found)
        return found

    def _cleanup_token(self, auth_token) -> bool:
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            username = auth_token.user.get_username()
            auth_token.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            return True
        return False


# How long this process lets a token knox accepted read without asking knox again.
RECENT_TOKEN_SECONDS = 1.0


class RecentTokens:
    """Tokens knox accepted in this process in the last RECENT_TOKEN_SECONDS (at most ``size``),
    by their digest (knox's hash of the token: the token itself is never kept): (user, token
    row) handed out as copies, so no request sees another's changes to them. Emptied when a
    token is deleted or an account saved in this process (a revocation, a sign-out, a new
    password, a deactivated account)."""

    def __init__(self, size: int = 1000):
        self.size = size
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, object, object]] = {}

    def get(self, digest: str) -> tuple | None:
        """(a copy of the user, of the token row) when accepted within RECENT_TOKEN_SECONDS and
        not expired since, else None."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        until, user, auth_token = entry
        if time.monotonic() >= until or (auth_token.expiry is not None and auth_token.expiry < timezone.now()):
            return None
        user, auth_token = copy.copy(user), copy.copy(auth_token)
        auth_token.user = user
        return user, auth_token

    def remember(self, digest: str, user, auth_token) -> None:
        """Keep what knox accepted for RECENT_TOKEN_SECONDS (the oldest entries go past ``size``)."""
        now = time.monotonic()
        with self._lock:
            if len(self._entries) >= self.size:
                for key in [key for key, (until, _, _) in self._entries.items() if until <= now]:
                    del self._entries[key]
                while len(self._entries) >= self.size:
                    del self._entries[next(iter(self._entries))]
            self._entries.pop(digest, None)
            self._entries[digest] = (now + RECENT_TOKEN_SECONDS, copy.copy(user), copy.copy(auth_token))

    def forget(self, **kwargs) -> None:
        """Forget every token (a signal receiver: a token deleted, an account saved)."""
        with self._lock:
            self._entries.clear()


recent_tokens = RecentTokens()
for _sender in ("knox.AuthToken", "accounts.ApiToken", settings.AUTH_USER_MODEL):
    post_delete.connect(recent_tokens.forget, sender=_sender, dispatch_uid=f"recent-tokens-deleted-{_sender}")
post_save.connect(recent_tokens.forget, sender=settings.AUTH_USER_MODEL, dispatch_uid="recent-tokens-saved-user")


# --- OpenAPI -------------------------------------------------------------------------------------


class TokenScheme(KnoxTokenScheme):
    """API tokens (knox) keep the security scheme name they had before knox: ``tokenAuth``."""

    target_class = "movierec.api.TokenAuthentication"
    name = "tokenAuth"
    priority = 1


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: document the error body on every operation.

    Every operation may answer 403 and 429; those that authenticate 401 (not signed in, or a bad
    token); those with input (a body or query parameters) 400; those with a body 413; those
    with a path parameter or pages 404.
    """
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", _ERROR_COMPONENT)
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    descriptions = {
        "400": "Invalid input.",
        "401": "Not signed in, or the token is invalid.",
        "403": "Signed in but not allowed.",
        "404": "Not found.",
        "413": "The request body is too large.",
        "429": "Too many requests; retry after the number of seconds in Retry-After.",
    }
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            parameters = operation.get("parameters", [])
            codes = ["403", "429"]
            if any(operation.get("security", [])):
                codes.append("401")
            if "requestBody" in operation or any(p["in"] == "query" for p in parameters):
                codes.append("400")
            if "requestBody" in operation:
                codes.append("413")
            if any(p["in"] == "path" for p in parameters) or any(p["name"] == "page" for p in parameters):
                codes.append("404")  # no such object, or a page past the last
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(code, {"description": descriptions[code], "content": error_ref})
    return result


_ERROR_COMPONENT = {
    "type": "object",
    "description": "The body of every error answer.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable error code."},
                "message": {"type": "string", "description": "What went wrong, for people."},
                "fields": {
                    "type": "object",
                    "description": "Messages per offending input field; empty when no field is at fault.",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
            "required": ["code", "message", "fields"],
        }
    },
    "required": ["error"],
}



# --- Errors outside the API views (Django's handler400/403/404/500) --------------------------------


def _api_error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "fields": {}}}, status=status)


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception):
    """handler400: the API's error body under /api/, the site's 400 page everywhere else."""
    if _is_api(request):
        if isinstance(exception, RequestDataTooBig):
            return _api_error(413, RequestTooLarge.default_code, str(RequestTooLarge().detail))
        return _api_error(400, "bad_request", "The request could not be understood.")
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    """handler403: the API's error body under /api/, the site's 403 page everywhere else."""
    if _is_api(request):
        return _api_error(403, "permission_denied", "You do not have permission to perform this action.")
    return defaults.permission_denied(request, exception)


def not_found(request, exception):
    """handler404: the API's error body under /api/, the site's 404 page everywhere else."""
    if _is_api(request):
        return _api_error(404, "not_found", "No API endpoint at this address.")
    return defaults.page_not_found(request, exception)


def server_error(request):
    """handler500: the API's error body under /api/, the site's 500 page everywhere else."""
    if _is_api(request):
        return _api_error(500, "server_error", "Something went wrong on our side; it has been logged.")
    return defaults.server_error(request)
