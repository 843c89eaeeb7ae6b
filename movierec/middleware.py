"""Content-Security-Policy on HTML pages (Django 5.2 has none built in).

The site serves only its own CSS and JavaScript, with no inline scripts or styles; posters are
images hot-linked from image hosts over HTTPS. The admin fits the same policy. Only the API docs
page (Swagger UI, self-hosted through drf-spectacular-sidecar) needs inline styles.
"""

SITE_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: https:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
# Swagger UI's page carries an inline <style> block and the UI sets style attributes.
DOCS_POLICY = {**SITE_POLICY, "style-src": "'self' 'unsafe-inline'"}
DOCS_URL_NAMES = {"api-docs"}


def _header(policy: dict[str, str]) -> str:
    return "; ".join(f"{directive} {sources}" for directive, sources in policy.items())


SITE_HEADER = _header(SITE_POLICY)
DOCS_HEADER = _header(DOCS_POLICY)


class ContentSecurityPolicyMiddleware:
    """Add Content-Security-Policy to every HTML response that does not set its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" in response or not response.get("Content-Type", "").startswith("text/html"):
            return response
        match = getattr(request, "resolver_match", None)
        is_docs = match is not None and match.url_name in DOCS_URL_NAMES
        response["Content-Security-Policy"] = DOCS_HEADER if is_docs else SITE_HEADER
        return response
