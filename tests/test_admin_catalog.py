"""The catalogue admin: only staff reach it; staff add a movie with its cast and find it in search."""
import pytest
from django.urls import reverse

from catalog.models import Actor, CastMember, Director, Movie, Rating
from catalog.search import search_movies
from catalog.services import merge_people
from tests.factories import make_genre, make_movie, make_rating, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(make_user("staff@example.com", is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("url_name", ["admin:index", "admin:catalog_movie_changelist", "admin:catalog_movie_add"])
def test_anonymous_visitors_are_sent_to_the_admin_login(client, url_name):
    response = client.get(reverse(url_name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("url_name", ["admin:index", "admin:catalog_movie_changelist"])
def test_signed_in_non_staff_users_cannot_reach_the_admin(client, url_name):
    client.force_login(make_user("member@example.com"))
    response = client.get(reverse(url_name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_staff_see_the_movie_list_with_search_and_filters(staff_client):
    make_movie("The Godfather", year=1972, genres=["Crime"])
    make_movie("Toy Story", year=1995, genres=["Animation"])
    changelist = reverse("admin:catalog_movie_changelist")
    assert "The Godfather" in staff_client.get(changelist, {"q": "godfather"}).text
    assert "Toy Story" not in staff_client.get(changelist, {"q": "godfather"}).text
    by_decade = staff_client.get(changelist, {"decade": "1990"}).text
    assert "Toy Story" in by_decade and "The Godfather" not in by_decade
    assert staff_client.get(changelist, {"q": "tt0068646"}).status_code == 200


def test_staff_add_a_movie_with_cast_in_admin_and_find_it_in_search(staff_client):
    drama = make_genre("Drama")
    director = Director.objects.create(name="Céline Sciamma")
    first, second = Actor.objects.create(name="Noémie Merlant"), Actor.objects.create(name="Adèle Haenel")
    search_movies("anything")  # the fuzzy index is built before the movie exists
    response = staff_client.post(
        reverse("admin:catalog_movie_add"),
        {
            "title": "Portrait of a Lady on Fire",
            "alternative_titles": "Portrait de la jeune fille en feu",
            "year": "2019",
            "synopsis": "A painter and her subject fall in love on a Breton island.",
            "genres": [drama.pk],
            "directors": [director.pk],
            "cast-TOTAL_FORMS": "3",
            "cast-INITIAL_FORMS": "0",
            "cast-MIN_NUM_FORMS": "0",
            "cast-MAX_NUM_FORMS": "1000",
            "cast-0-actor": first.pk,
            "cast-0-order": "0",
            "cast-1-actor": second.pk,
            "cast-1-order": "1",
            "cast-2-actor": "",
            "cast-2-order": "0",  # an untouched extra row, as the browser sends it
        },
    )
    assert response.status_code == 302, (response.context["adminform"].form.errors, response.context["inline_admin_formsets"][0].formset.errors)
    movie = Movie.objects.get(title="Portrait of a Lady on Fire")
    assert [member.actor.name for member in CastMember.objects.filter(movie=movie)] == ["Noémie Merlant", "Adèle Haenel"]
    assert list(movie.directors.all()) == [director]
    assert search_movies("portrait of a lady on fire")[0] == movie
    assert movie in search_movies("portait lady fire")  # typo
    assert movie in search_movies("jeune fille en feu")  # alternative title
    assert movie in search_movies("sciamma")  # director
    assert movie in search_movies("noemie merlant")  # actor, without accents


def test_movie_edit_page_shows_a_poster_preview_even_without_a_poster_url(staff_client):
    movie = make_movie("Posterless")
    page = staff_client.get(reverse("admin:catalog_movie_change", args=[movie.pk])).text
    assert reverse("catalog:poster", args=[movie.pk]) in page


def test_admin_rejects_an_invalid_rating_and_keeps_statistics_current(staff_client):
    movie, member = make_movie("Heat"), make_user("member@example.com")
    add_url = reverse("admin:catalog_rating_add")
    response = staff_client.post(add_url, {"user": member.pk, "movie": movie.pk, "score": "7"})
    assert response.status_code == 200
    assert not Rating.objects.exists()
    response = staff_client.post(add_url, {"user": member.pk, "movie": movie.pk, "score": "4.5"})
    assert response.status_code == 302
    movie.refresh_from_db()
    assert (movie.rating_count, movie.rating_mean) == (1, 4.5)


def test_deleting_ratings_in_admin_updates_movie_statistics(staff_client):
    movie = make_movie("Heat")
    rating = make_rating(make_user(), movie, 5.0)
    make_rating(make_user(), movie, 3.0)
    staff_client.post(reverse("admin:catalog_rating_delete", args=[rating.pk]), {"post": "yes"})
    movie.refresh_from_db()
    assert (movie.rating_count, movie.rating_mean) == (1, 3.0)


# --- duplicates: warned before saving, merged without losing anything -----------------------------------
def movie_form(**fields):
    data = {"title": "", "alternative_titles": "", "year": "", "synopsis": "", "cast-TOTAL_FORMS": "0",
            "cast-INITIAL_FORMS": "0", "cast-MIN_NUM_FORMS": "0", "cast-MAX_NUM_FORMS": "1000"}
    return {**data, **fields}


def test_admin_warns_before_saving_a_movie_with_the_same_title_and_year_and_saves_it_if_asked(staff_client):
    dune = make_movie("Dune: Part Two", year=2024)
    add = reverse("admin:catalog_movie_add")
    response = staff_client.post(add, movie_form(title="Dune - Part Two", year="2024"))
    assert response.status_code == 200 and Movie.objects.count() == 1
    page = response.text
    assert "This looks like a duplicate of" in page and reverse("admin:catalog_movie_change", args=[dune.pk]) in page
    assert 'name="save_anyway"' in page
    assert staff_client.post(add, movie_form(title="Dune: Part Two", year="2021")).status_code == 302  # another year
    response = staff_client.post(add, movie_form(title="Dune: Part Two", year="2024", save_anyway="on"))
    assert response.status_code == 302 and Movie.objects.filter(title="Dune: Part Two", year=2024).count() == 2


def test_admin_names_the_movie_that_already_has_an_external_id(staff_client):
    dune = make_movie("Dune: Part Two", year=2024, imdb_id="tt15239678")
    response = staff_client.post(reverse("admin:catalog_movie_add"),
                                 movie_form(title="Dune 2", year="2024", imdb_id="tt15239678", save_anyway="on"))
    assert response.status_code == 200 and Movie.objects.count() == 1
    assert "IMDb id tt15239678 already belongs to" in response.text
    assert reverse("admin:catalog_movie_change", args=[dune.pk]) in response.text


def test_likely_duplicate_filter_lists_movies_sharing_title_and_year(staff_client):
    make_movie("Dune: Part Two", year=2024)
    Movie.objects.create(title="Dune Part Two", year=2024)
    make_movie("Dune", year=2021)
    page = staff_client.get(reverse("admin:catalog_movie_changelist"), {"duplicates": "title-year"}).text
    assert page.count("Dune Part Two") + page.count("Dune: Part Two") >= 2 and ">Dune<" not in page


def test_merging_movies_moves_ratings_lists_credits_tags_and_history_without_losing_any(staff_client):
    import datetime as dt

    from catalog.models import NotInterested, Tag, WatchlistEntry
    from recommendations.models import HistoryImport

    keep = make_movie("Dune: Part Two", year=2024, genres=["Sci-Fi"], directors=["Denis Villeneuve"],
                      actors=["Timothée Chalamet"])
    twin = make_movie("Dune - Part Two", year=2024, genres=["Adventure"], directors=["Denis Villeneuve"],
                      actors=["Zendaya", "Timothée Chalamet"], imdb_id="tt15239678", synopsis="Paul unites the Fremen.",
                      alternative_titles="Dune : Deuxième partie")
    both, only_twin, lister = make_user(), make_user(), make_user()
    old, new = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc), dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)
    Rating.objects.create(user=both, movie=keep, score=3.0, created_at=old, updated_at=old)
    Rating.objects.create(user=both, movie=twin, score=4.5, created_at=new, updated_at=new)  # most recent: kept
    Rating.objects.create(user=only_twin, movie=twin, score=2.0, created_at=old, updated_at=old)
    WatchlistEntry.objects.create(user=lister, movie=keep)
    WatchlistEntry.objects.create(user=lister, movie=twin)
    NotInterested.objects.create(user=only_twin, movie=twin)
    Tag.objects.create(user=both, movie=twin, tag="spice", created_at=new)
    Tag.objects.create(user=both, movie=keep, tag="spice", created_at=old)
    job = HistoryImport.objects.create(user=lister, source="letterboxd", filename="ratings.csv",
                                       rows=[{"movie_id": twin.pk, "candidate_ids": [twin.pk, keep.pk]}])
    changelist = reverse("admin:catalog_movie_changelist")
    selected = {"action": "merge_selected", "_selected_action": [keep.pk, twin.pk]}

    preview = staff_client.post(changelist, selected)
    assert preview.status_code == 200 and "Merge 2 movies" in preview.text and 'name="keep"' in preview.text
    assert Movie.objects.count() == 2  # nothing merged before confirming

    response = staff_client.post(changelist, {**selected, "confirm": "yes", "keep": keep.pk})
    assert response.status_code == 302
    assert list(Movie.objects.all()) == [keep]
    assert sorted(Rating.objects.values_list("user_id", "score")) == sorted([(both.pk, 4.5), (only_twin.pk, 2.0)])
    assert Rating.objects.get(user=both).updated_at == new
    assert list(WatchlistEntry.objects.values_list("user_id", "movie_id")) == [(lister.pk, keep.pk)]
    assert list(NotInterested.objects.values_list("user_id", "movie_id")) == [(only_twin.pk, keep.pk)]
    assert list(Tag.objects.values_list("movie_id", "tag")) == [(keep.pk, "spice")]
    keep.refresh_from_db()
    assert sorted(keep.genres.values_list("name", flat=True)) == ["Adventure", "Sci-Fi"]
    assert list(keep.directors.values_list("name", flat=True)) == ["Denis Villeneuve"]
    assert [(c.actor.name, c.order) for c in keep.cast.order_by("order")] == [("Timothée Chalamet", 0), ("Zendaya", 0)]
    assert (keep.imdb_id, keep.synopsis, keep.alternative_titles) == (
        "tt15239678", "Paul unites the Fremen.", "Dune : Deuxième partie")  # "Dune - Part Two" is the same title
    assert (keep.rating_count, keep.rating_mean) == (2, 3.25)
    job.refresh_from_db()
    assert job.rows == [{"movie_id": keep.pk, "candidate_ids": [keep.pk]}]
    assert keep in search_movies("dune part two") and keep in search_movies("deuxieme partie")


def test_merging_people_moves_every_credit_and_keeps_the_best_billing(staff_client):
    gravity = make_movie("Gravity", year=2013, directors=["Alfonso Cuaron"], actors=["Sandra Bullock"])
    roma = make_movie("Roma", year=2018, directors=["Alfonso Cuarón"])
    children = make_movie("Children of Men", year=2006, directors=["Alfonso Cuaron", "Alfonso Cuarón"])
    accented, plain = Director.objects.get(name="Alfonso Cuarón"), Director.objects.get(name="Alfonso Cuaron")
    page = staff_client.get(reverse("admin:catalog_director_changelist"), {"duplicates": "name"}).text
    assert "Alfonso Cuarón" in page and "Alfonso Cuaron" in page

    staff_client.post(reverse("admin:catalog_director_changelist"), {
        "action": "merge_selected", "_selected_action": [accented.pk, plain.pk], "confirm": "yes", "keep": accented.pk})

    assert list(Director.objects.values_list("name", flat=True)) == ["Alfonso Cuarón"]
    assert sorted(accented.movies.values_list("title", flat=True)) == ["Children of Men", "Gravity", "Roma"]
    assert children.directors.count() == 1 and roma.directors.count() == 1 and gravity.directors.count() == 1

    first, second = Actor.objects.create(name="Sandra Bullock "), Actor.objects.get(name="Sandra Bullock")
    CastMember.objects.create(movie=gravity, actor=first, order=3)
    merge_people(first, [second])
    assert [(c.actor_id, c.order) for c in CastMember.objects.filter(movie=gravity)] == [(first.pk, 0)]


def test_admin_warns_before_saving_a_person_whose_name_differs_only_by_accents(staff_client):
    Director.objects.create(name="Alfonso Cuarón")
    add = reverse("admin:catalog_director_add")
    response = staff_client.post(add, {"name": "Alfonso Cuaron"})
    assert response.status_code == 200 and "This looks like a duplicate of" in response.text
    assert staff_client.post(add, {"name": "Alfonso Cuaron", "save_anyway": "on"}).status_code == 302
