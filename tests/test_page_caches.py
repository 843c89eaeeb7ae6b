"""The movie page's and search's kept parts (credits, more from the directors, similar films, the
films a query finds) never hide a change: a staff edit in the admin shows at once, a new rating
shows in every average at once, and the user's own rating, predicted stars and lists are current."""
import pytest
from django.test import Client
from django.urls import reverse

from catalog.models import Actor, Director, Movie
from catalog.services import hide_movie
from tests.factories import make_genre, make_movie, make_rating, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(make_user("staff@example.com", is_staff=True, is_superuser=True))
    return client


def _admin_edit(staff_client, movie, **fields):
    """Save the film through its admin change form (credits in the form, cast as a new inline row)."""
    data = {"title": movie.title, "alternative_titles": "", "year": str(movie.year), "synopsis": "",
            "genres": [g.pk for g in movie.genres.all()], "directors": [d.pk for d in movie.directors.all()],
            "cast-TOTAL_FORMS": "0", "cast-INITIAL_FORMS": "0", "cast-MIN_NUM_FORMS": "0", "cast-MAX_NUM_FORMS": "1000",
            **fields}
    response = staff_client.post(reverse("admin:catalog_movie_change", args=[movie.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors


def test_a_film_edited_in_the_admin_shows_the_edit_on_its_page_and_in_search_at_once(staff_client):
    client = Client()  # a visitor beside the staff member
    movie = make_movie("Heat", year=1995, genres=["Crime"], directors=["Michael Mann"], actors=["Al Pacino"])
    make_movie("Collateral", year=2004, directors=["Michael Mann"])
    page = client.get(movie.get_absolute_url()).text
    assert "Crime" in page and "Michael Mann" in page and "Collateral" in page
    assert client.get(movie.get_absolute_url()).context["by_directors"] == [Movie.objects.get(title="Collateral")]
    assert [m.title for m in client.get(reverse("catalog:search"), {"q": "heat"}).context["results"]] == ["Heat"]

    thriller, other = make_genre("Thriller"), Director.objects.create(name="Kathryn Bigelow")
    actor = Actor.objects.create(name="Robert De Niro")
    _admin_edit(staff_client, movie, title="Heat (Director's Cut)", genres=[thriller.pk], directors=[other.pk],
                **{"cast-TOTAL_FORMS": "1", "cast-0-actor": actor.pk, "cast-0-order": "1"})

    page = client.get(movie.get_absolute_url()).text
    assert "Heat (Director&#x27;s Cut)" in page and "Thriller" in page and "Kathryn Bigelow" in page
    assert "Robert De Niro" in page
    assert "Michael Mann" not in page and "Collateral" not in page  # more from the old director is gone
    found = client.get(reverse("catalog:search"), {"q": "heat"}).context["results"]
    assert [m.title for m in found] == ["Heat (Director's Cut)"]
    assert client.get(reverse("catalog:search"), {"q": "bigelow"}).context["results"] == [movie]


def test_a_new_rating_shows_at_once_in_the_film_the_shelves_and_search(client):
    heat = make_movie("Heat", directors=["Michael Mann"])
    collateral = make_movie("Collateral", directors=["Michael Mann"])
    make_rating(make_user(), collateral, 2.0)
    client.get(heat.get_absolute_url())
    client.get(reverse("catalog:search"), {"q": "collateral"})

    make_rating(make_user(), heat, 5.0)
    make_rating(make_user(), collateral, 4.0)

    page = client.get(heat.get_absolute_url())
    assert (page.context["movie"].rating_count, page.context["movie"].rating_mean) == (1, 5.0)
    [shelf_film] = page.context["by_directors"]
    assert (shelf_film.rating_count, shelf_film.rating_mean) == (2, 3.0)
    [found] = client.get(reverse("catalog:search"), {"q": "collateral"}).context["results"]
    assert (found.rating_count, found.rating_mean) == (2, 3.0)


def test_the_users_own_parts_of_a_kept_film_page_are_current(client):
    heat = make_movie("Heat", directors=["Michael Mann"])
    collateral = make_movie("Collateral", directors=["Michael Mann"])
    member = make_user()
    client.force_login(member)
    first = client.get(heat.get_absolute_url()).context
    assert first["user_score"] is None and not first["on_watchlist"] and not first["hidden"]
    assert first["user_ratings"] == {}

    make_rating(member, heat, 4.5)
    make_rating(member, collateral, 3.0)
    client.post(reverse("catalog:watchlist_toggle", args=[heat.pk]), {"action": "add"})
    hide_movie(user=member, movie=heat)

    response = client.get(heat.get_absolute_url())
    now = response.context
    assert now["user_score"] == 4.5 and "Your predicted rating" not in response.text
    assert now["user_ratings"][collateral.pk] == 3.0  # the user's stars on the shelf's card
    assert now["hidden"]


def test_a_film_page_reads_the_users_own_parts_in_one_query(client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from catalog.services import add_to_watchlist
    from recommendations.models import GenrePreference

    heat = make_movie("Heat", genres=["Crime"], directors=["Michael Mann"])
    collateral = make_movie("Collateral", directors=["Michael Mann"])
    member = make_user()
    make_rating(member, collateral, 3.0)
    make_rating(member, make_movie("Alien"), 5.0)
    add_to_watchlist(user=member, movie=heat)
    GenrePreference.objects.create(user=member, genre=heat.genres.get())
    client.force_login(member)
    client.get(heat.get_absolute_url())  # the film's kept parts

    with CaptureQueriesContext(connection) as queries:
        context = client.get(heat.get_absolute_url()).context
    assert context["user_score"] is None and context["user_ratings"] == {collateral.pk: 3.0}
    assert context["on_watchlist"] and not context["hidden"]
    own = [q["sql"] for q in queries.captured_queries
           if any(table in q["sql"] for table in ("catalog_rating", "catalog_watchlistentry",
                                                  "catalog_notinterested", "recommendations_genrepreference"))]
    assert len(own) == 1, own


def test_the_rating_widgets_stars_are_what_the_template_loop_gave():
    from django.template import Context, Template

    loop = Template(
        "{% load catalog_extras %}{% half_star_choices as choices %}{% with current=user_score|score_value %}"
        "{% for value, label in choices %}<input type=\"radio\" class=\"visually-hidden\" "
        "id=\"rate-{{ movie.pk }}-{{ value }}\" name=\"score\" value=\"{{ value }}\"{% if value == current %} checked"
        "{% endif %}><label for=\"rate-{{ movie.pk }}-{{ value }}\" class=\"star-half star-half--{% cycle 'left' 'right' %}\" "
        "title=\"{{ label }}\"><span class=\"visually-hidden\">{{ label }}</span></label>{% endfor %}{% endwith %}")
    tag = Template("{% load catalog_extras %}{% with current=user_score|score_value %}"
                   "{% star_inputs movie.pk current %}{% endwith %}")
    movie = make_movie("Heat")
    for score in (None, 0.5, 1.0, 3.5, 5.0):
        context = {"movie": movie, "user_score": score}
        assert tag.render(Context(context)) == loop.render(Context(context))
    assert ' value="3.5" checked>' in tag.render(Context({"movie": movie, "user_score": 3.5}))


def test_watchlist_and_hidden_flags_are_read_apart():
    from catalog.selectors import movie_flags_for_user
    from catalog.services import add_to_watchlist

    movie, member = make_movie("Heat"), make_user()
    assert movie_flags_for_user(member, movie) == {"on_watchlist": False, "hidden": False}
    add_to_watchlist(user=member, movie=movie)
    assert movie_flags_for_user(member, movie) == {"on_watchlist": True, "hidden": False}
    hide_movie(user=member, movie=make_movie("Other"))
    assert movie_flags_for_user(member, movie) == {"on_watchlist": True, "hidden": False}


def test_search_keeps_a_query_s_matches_until_the_catalogue_changes(django_assert_max_num_queries):
    from catalog.search import search_catalogue

    make_movie("Heat", directors=["Michael Mann"])
    first = search_catalogue("heat")
    with django_assert_max_num_queries(2):  # the kept matches: the films and their genres only
        assert search_catalogue("heat").movies == first.movies
    new = make_movie("Heat Wave")  # saved one by one: searchable at once
    assert new in search_catalogue("heat").movies
    assert Movie.objects.filter(pk=new.pk).delete()
    assert new not in search_catalogue("heat").movies


def test_movie_cards_give_what_the_template_loop_gave():
    from django.template import Context, Template

    films = [make_movie("Heat", genres=["Crime", "Drama", "Thriller"]), make_movie("Alien", genres=["Horror"]),
             make_movie("Untitled", year=None)]
    make_rating(make_user(), films[0], 4.0)
    films = list(Movie.objects.filter(pk__in=[f.pk for f in films]).prefetch_related("genres").order_by("pk"))
    for user_ratings in ({films[1].pk: 3.5}, None):
        context = Context({"movies": films, "user_ratings": user_ratings})
        loop = Template("{% load catalog_extras %}{% for movie in movies %}<li>{% movie_card movie "
                        "score=user_ratings|lookup:movie.pk %}</li>{% endfor %}").render(context)
        assert Template("{% load catalog_extras %}{% movie_cards movies user_ratings %}").render(context) == loop
    assert Template("{% load catalog_extras %}{% movie_cards movies %}").render(Context({"movies": films})) == loop


def test_the_search_stamp_changes_again_when_the_edit_commits(django_capture_on_commit_callbacks):
    from django.core.cache import cache

    from catalog.search import SEARCH_STAMP_KEY

    with django_capture_on_commit_callbacks(execute=True):
        make_movie("Heat")
        during = cache.get(SEARCH_STAMP_KEY)  # a search now would be kept under this stamp
    assert during and cache.get(SEARCH_STAMP_KEY) != during


def test_cards_read_light_render_as_the_full_films_do():
    from django.template import Context, Template

    from catalog.selectors import card_movies, movies_in_order

    films = [make_movie("Heat", genres=["Thriller", "Crime", "Drama"]), make_movie("Alien", genres=["Horror"]),
             make_movie("Untitled", year=None, genres=[])]
    make_rating(make_user(), films[0], 4.0)
    ids = [f.pk for f in films]
    template = Template("{% load catalog_extras %}{% movie_cards movies %}")
    full = movies_in_order(ids)
    light = movies_in_order(ids, cards=True)
    assert template.render(Context({"movies": light})) == template.render(Context({"movies": full}))
    assert [[g.name for g in m.genres.all()] for m in light] == [["Crime", "Drama", "Thriller"], ["Horror"], []]
    assert set(card_movies(ids)) == set(ids)


def test_a_genre_added_or_renamed_reaches_the_cards_and_the_search_form():
    from catalog.models import Genre
    from catalog.selectors import card_movies, forget_genres

    heat = make_movie("Heat", genres=["Crime"])
    assert [g.name for g in card_movies([heat.pk])[heat.pk].genres.all()] == ["Crime"]
    heat.genres.add(make_genre("Noir"))  # a genre this process never saw: read at once
    assert [g.name for g in card_movies([heat.pk])[heat.pk].genres.all()] == ["Crime", "Noir"]
    response = Client().get(reverse("catalog:search"), {"q": "heat", "genre": "noir"})
    assert response.status_code == 200 and [m.title for m in response.context["results"]] == ["Heat"]
    Genre.objects.filter(slug="crime").update(name="Crime film")
    assert [g.name for g in card_movies([heat.pk])[heat.pk].genres.all()] == ["Crime film", "Noir"]
    forget_genres()  # what MOVIE_PARTS_SECONDS does in a running process
    form = Client().get(reverse("catalog:search")).context["form"]
    assert "Crime film" in [label for _, label in form.fields["genre"].choices]


def test_the_search_form_lists_the_genres_by_name_and_refuses_an_unknown_one():
    make_genre("Western"), make_genre("Comedy")
    form = Client().get(reverse("catalog:search")).context["form"]
    assert [label for _, label in form.fields["genre"].choices] == ["Any genre", "Comedy", "Western"]
    refused = Client().get(reverse("catalog:search"), {"q": "x", "genre": "no-such-genre"})
    assert refused.status_code == 400
    assert refused.context["form"].errors["genre"] == [
        "Select a valid choice. That choice is not one of the available choices."]


def test_a_film_page_reads_its_kept_parts_in_one_round_trip(client):
    from unittest import mock

    from django.core.cache import caches

    heat = make_movie("Heat", directors=["Michael Mann"])
    make_movie("Collateral", directors=["Michael Mann"])
    client.get(heat.get_absolute_url())  # kept
    kept = ("catalog:movie-credits:", "catalog:more-from-directors:", "recommendations:similar:")
    cache = caches["default"]
    reads, get, get_many = [], cache.get, cache.get_many  # (one read or several at once, its keys)
    inside_many = []  # locmem's get_many reads key by key

    def one(key, *args, **kwargs):
        if not inside_many:
            reads.append(("get", [key]))
        return get(key, *args, **kwargs)

    def many(keys, *args, **kwargs):
        reads.append(("get_many", list(keys)))
        inside_many.append(True)
        try:
            return get_many(keys, *args, **kwargs)
        finally:
            inside_many.pop()

    with mock.patch.object(cache, "get", one), mock.patch.object(cache, "get_many", many):
        page = client.get(heat.get_absolute_url())
    assert [m.title for m in page.context["by_directors"]] == ["Collateral"]
    parts = [(kind, keys) for kind, keys in reads if any(str(key).startswith(kept) for key in keys)]
    assert [(kind, sorted(k.split(":")[1] for k in keys)) for kind, keys in parts] == [
        ("get_many", ["more-from-directors", "movie-credits", "similar"])]


def test_a_film_page_writes_its_impressions_at_once(client):
    from unittest import mock

    from recommendations import impressions

    heat = make_movie("Heat", directors=["Michael Mann"])
    make_movie("Collateral", directors=["Michael Mann"])
    client.force_login(make_user())
    with mock.patch.object(impressions, "apply_events") as written:
        client.get(heat.get_absolute_url())
    assert written.call_count == 1  # the film opened and the shelf shown, in one write
    [events] = written.call_args.args
    assert {event["t"] for event in events} == {"o"} | ({"i"} if len(events) > 1 else set())
