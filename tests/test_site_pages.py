"""The site's own error pages with DEBUG off, and the favicon every browser asks for."""
import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import path

from movierec.urls import *  # noqa: F401,F403 (this module is a URLconf too: the site's, plus a failing page)
from movierec.urls import urlpatterns as site_urlpatterns

pytestmark = pytest.mark.django_db


def _failing_page(request):
    raise RuntimeError("a bug with a secret in it")


urlpatterns = [path("failing/", _failing_page), *site_urlpatterns]


@pytest.fixture(autouse=True)
def production(settings):
    settings.DEBUG = False


def test_a_missing_film_is_the_sites_404_page(client):
    response = client.get("/movies/987654/")

    assert response.status_code == 404
    html = response.content.decode()
    assert "We can't find that page" in html
    assert 'class="site-header"' in html and 'name="q"' in html
    assert "Content-Security-Policy" in response


def test_an_unexpected_error_is_the_sites_500_page(settings):
    settings.ROOT_URLCONF = __name__

    response = Client(raise_request_exception=False).get("/failing/")

    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side" in html
    assert "/static/css/site.css" in html
    assert "secret" not in html


def test_an_expired_form_is_the_sites_csrf_page():
    client = Client(enforce_csrf_checks=True)

    response = client.post("/accounts/login/", {"login": "someone@example.com", "password": "x"})

    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()


def test_a_non_staff_member_at_the_admin_gets_the_sites_403_page(client):
    from tests.factories import make_user

    client.force_login(make_user())

    response = client.get("/admin/login/?next=/admin/")

    assert response.status_code == 403
    assert "You can't open this page" in response.content.decode()


def test_the_favicon_is_served_where_browsers_look_for_it(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 302
    assert response.url == "/static/favicon.ico"
    icon = finders.find("favicon.ico")
    with open(icon, "rb") as handle:
        assert handle.read(4) == b"\x00\x00\x01\x00", "a real .ico file"


def test_pages_name_the_sites_icon(client):
    html = client.get("/").content.decode()

    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    assert finders.find("favicon.svg")
