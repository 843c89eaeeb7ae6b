"""Fuzzing the API from its own OpenAPI schema with schemathesis.

Every operation gets a bounded number of generated requests (valid and invalid input), once
anonymously and once signed in with a token (as staff, so the catalogue writes are exercised
too), against a small catalogue with a published recommendation model. A third run sends every
write operation hostile JSON bodies: a generated body with one value (or the whole body)
replaced by a number past 64 bits, a number of 5,000 digits, 1e400, a boolean, a fraction or an
array nested 100,000 deep. No answer may be a 5xx, and every answer must match what the schema
documents (status code, content type, body).
"""
import json

import pytest
import schemathesis
from hypothesis import strategies as st
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS as CHECK_REGISTRY
from schemathesis.checks import load_all_checks

from accounts.services import issue_api_token
from catalog.models import Movie
from recommendations import services
from tests.factories import make_movie, make_rating, make_user
from tests.pipeline_data import FAST_FIT, make_taste_catalogue

EXAMPLES_PER_OPERATION = 10
# What the answers must satisfy: no server error, and status code, content type, headers and
# body as documented. Not enforced: that every schema-valid input is accepted (ids of movies that
# do not exist, a wrong password are rightly refused) and that every schema-invalid input is
# refused (DRF takes the number 7 for a text field as "7", a harmless lenience).
load_all_checks()
CHECKS = CHECK_REGISTRY.get_by_names(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,  # no example database written into the repository
    derandomize=True,  # the same requests on every run: a failure is reproducible
    suppress_health_check=list(HealthCheck),
)


# The schema as the app serves it at /api/v1/schema/; requests go to the app in process (WSGI).
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application())
# The same operations that take a body, for the hostile bodies below.
hostile_schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application()).include(
    method=["POST", "PUT", "PATCH"]
)

DEEP = 100_000
# Raw JSON text: Python's encoder can neither nest this deep nor write integers of 5,000 digits.
HOSTILE_LITERALS = [
    "1" + "0" * 30,
    "-" + "9" * 30,
    str(2**63),
    "1" + "0" * 5000,
    "1e400",
    "true",
    "1.5",
    "[" * DEEP + "]" * DEEP,
    '{"a": ' * 2000 + "1" + "}" * 2000,
]
_PLACEHOLDER = "\u0000hostile\u0000"


def _value_paths(value, prefix=()):
    """Paths to every value inside a JSON document: ("ratings", 0, "score"), ..."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield (*prefix, key)
        yield from _value_paths(item, (*prefix, key))


def _replaced(document, path, literal) -> bytes:
    """The document as JSON text with the value at path (the whole document for ()) replaced by literal."""
    if not path:
        return literal.encode()
    document = json.loads(json.dumps(document))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = _PLACEHOLDER
    return json.dumps(document).replace(json.dumps(_PLACEHOLDER), literal).encode()


@hostile_schema.hook
def flatmap_body(context, body):
    paths = [(), *_value_paths(body)]
    return st.builds(_replaced, st.just(body), st.sampled_from(paths), st.sampled_from(HOSTILE_LITERALS))


@pytest.fixture(autouse=True)
def connection_kept_between_requests():
    """Like Django's test client: requests must not close the test's database connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def catalogue(transactional_db, settings, tmp_path, django_capture_on_commit_callbacks):
    """A small catalogue with a published model behind the app; throttling out of the way.

    transactional_db: ids are never reused between tests, so the process-wide loaded model of
    one test cannot pass for the next one's. Throttling has its own tests.
    """
    config = dict(settings.REST_FRAMEWORK)
    config["DEFAULT_THROTTLE_RATES"] = {scope: "100000/min" for scope in config["DEFAULT_THROTTLE_RATES"]}
    settings.REST_FRAMEWORK = config
    settings.MEDIA_ROOT = tmp_path / "media"
    make_taste_catalogue(users_per_genre=4, films_per_genre=12)
    make_movie("The Godfather", year=1972, genres=["Crime"], directors=["Francis Ford Coppola"], actors=["Al Pacino"])
    with django_capture_on_commit_callbacks(execute=True):
        services.publish_model(services.fit_model(hyperparameters=FAST_FIT, progress=False))


@pytest.fixture
def fan():
    """A signed-in client's account: staff (so catalogue writes run too) with ratings of its own."""
    user = make_user("fuzzer@example.com", is_staff=True)
    for movie in Movie.objects.filter(genres__name="Western")[:5]:
        make_rating(user, movie, 4.5)
    return user


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_answers_anonymous_clients_as_documented(case):
    case.call_and_validate(checks=CHECKS)


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_answers_signed_in_clients_as_documented(case, fan):
    # A fresh token each time: a generated request may have signed out (revoked its token).
    case.call_and_validate(headers={"Authorization": f"Token {issue_api_token(user=fan)[1]}"}, checks=CHECKS)


@hostile_schema.parametrize()
@FUZZ_SETTINGS
def test_api_answers_hostile_json_bodies_as_documented(case, fan):
    case.call_and_validate(headers={"Authorization": f"Token {issue_api_token(user=fan)[1]}"}, checks=CHECKS)
