"""The OpenAPI schema: valid, generated without warnings, and listing every API endpoint."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.urls import URLResolver, get_resolver
from drf_spectacular.validation import validate_schema

REPO_ROOT = Path(__file__).resolve().parent.parent
NOT_IN_SCHEMA = {"/api/v1/schema/", "/api/v1/docs/"}


def api_url_paths() -> set[str]:
    """Every URL under /api/v1/ that the URLconf routes, written the OpenAPI way ({name})."""

    def walk(patterns, prefix):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern)

    paths = set()
    for route in walk(get_resolver().url_patterns, "/"):
        route = route.replace("^", "").replace("$", "")
        route = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route)
        route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        route = route.replace("{pk}", "{id}")  # the schema names primary keys "id"
        if route.startswith("/api/v1/"):
            paths.add(route)
    return paths


@pytest.fixture
def schema(client, db):
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_schema_is_valid_openapi_3(schema):
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")


def test_schema_lists_every_api_endpoint(schema):
    assert set(schema["paths"]) == api_url_paths() - NOT_IN_SCHEMA


def test_schema_documents_sign_in_and_sign_out(schema):
    token = schema["paths"]["/api/v1/auth/token/"]

    assert token["post"]["operationId"] == "auth_login"
    assert "security" not in token["post"]
    assert token["delete"]["operationId"] == "auth_logout"
    assert {"tokenAuth": []} in token["delete"]["security"]
    assert "Authorization: Token" in schema["info"]["description"]


def test_every_operation_documents_the_error_body(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            errors = {code for code in operation["responses"] if code.startswith("4")}
            assert {"403", "429"} <= errors, (method, path)
            for code in errors:
                assert operation["responses"][code]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"
                }


def test_schema_generates_without_warnings():
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
