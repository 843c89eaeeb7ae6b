"""Search forgives typos and accents, finds people's films, filters, and refuses over-long queries."""
import pytest
from django.urls import reverse

from catalog.search import MAX_QUERY_LENGTH, QueryTooLong, search_movies, search_people
from tests.factories import make_movie, make_rating, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue():
    return {
        "godfather": make_movie(
            "The Godfather", year=1972, genres=["Crime", "Drama"], directors=["Francis Ford Coppola"],
            actors=["Marlon Brando", "Al Pacino"],
        ),
        "godfather2": make_movie(
            "The Godfather Part II", year=1974, genres=["Crime", "Drama"], directors=["Francis Ford Coppola"],
            actors=["Al Pacino", "Robert De Niro"],
        ),
        "amelie": make_movie(
            "Amélie", year=2001, genres=["Comedy", "Romance"], directors=["Jean-Pierre Jeunet"],
            actors=["Audrey Tautou"], alternative_titles="Le Fabuleux Destin d'Amélie Poulain",
        ),
        "heat": make_movie("Heat", year=1995, genres=["Crime"], directors=["Michael Mann"], actors=["Al Pacino", "Robert De Niro"]),
        "go": make_movie("Go", year=1999, genres=["Comedy"]),
        "toy_story": make_movie("Toy Story", year=1995, genres=["Animation"], directors=["John Lasseter"], actors=["Tom Hanks"]),
    }


def titles(movies):
    return [movie.title for movie in movies]


def test_a_typo_still_finds_the_movie_first(catalogue):
    results = search_movies("godfater")
    assert results[0] == catalogue["godfather"]
    assert catalogue["godfather2"] in results
    assert catalogue["go"] not in results


def test_each_word_may_be_misspelt_and_words_may_be_left_out(catalogue):
    assert search_movies("godfater part")[0] == catalogue["godfather2"]
    assert search_movies("toy stroy")[0] == catalogue["toy_story"]
    assert search_movies("fabulous destin") == []  # a different word is not a typo


def test_a_shared_article_is_not_a_match(catalogue):
    assert catalogue["toy_story"] not in search_movies("the heat")
    assert search_movies("the heat")[0] == catalogue["heat"]


def test_accents_do_not_matter_either_way(catalogue):
    assert search_movies("amelie")[0] == catalogue["amelie"]
    assert search_movies("AMÉLIE")[0] == catalogue["amelie"]


def test_alternative_titles_are_searched(catalogue):
    assert search_movies("fabuleux destin")[0] == catalogue["amelie"]


def test_exact_title_ranks_before_longer_titles(catalogue):
    assert titles(search_movies("the godfather"))[:2] == ["The Godfather", "The Godfather Part II"]


def test_popularity_breaks_ties_between_equal_matches(catalogue):
    for _ in range(3):
        make_rating(make_user(), catalogue["godfather2"], 4.0)
    results = search_movies("pacino")
    assert results[0] == catalogue["godfather2"]
    assert set(results) == {catalogue["godfather"], catalogue["godfather2"], catalogue["heat"]}


def test_a_director_name_finds_their_films(catalogue):
    assert set(search_movies("coppola")) == {catalogue["godfather"], catalogue["godfather2"]}


def test_an_actor_name_with_a_typo_finds_their_films(catalogue):
    assert set(search_movies("robert de nero")) >= {catalogue["godfather2"], catalogue["heat"]}
    assert catalogue["toy_story"] in search_movies("tom hank")


def test_people_search_returns_directors_and_actors(catalogue):
    people = search_people("pacino")
    assert [(person.name, person.role) for person in people] == [("Al Pacino", "Actor")]
    assert search_people("jeunet")[0].role == "Director"


def test_genre_and_year_filters_narrow_the_results(catalogue):
    assert set(search_movies("pacino", year_from=1990)) == {catalogue["heat"]}
    assert set(search_movies("pacino", year_to=1973)) == {catalogue["godfather"]}
    assert search_movies("amelie", genre="crime") == []
    assert set(search_movies("", genre="crime", year_from=1973)) == {catalogue["godfather2"], catalogue["heat"]}


def test_a_new_movie_is_found_by_fuzzy_search_right_after_it_is_added(catalogue):
    assert search_movies("godfater")  # builds the cached index
    newcomer = make_movie("Godfatherless", year=2020)
    assert newcomer in search_movies("godfaterless")


def test_over_long_query_raises_a_clear_error(catalogue):
    with pytest.raises(QueryTooLong, match="at most 200 characters"):
        search_movies("x" * (MAX_QUERY_LENGTH + 1))


def test_search_page_shows_results_and_keeps_filters(client, catalogue):
    response = client.get(reverse("catalog:search"), {"q": "godfater", "genre": "crime"})
    assert response.status_code == 200
    assert "The Godfather" in response.text
    assert "Heat" not in response.text


def test_search_page_answers_an_over_long_query_with_a_message_not_an_error(client, catalogue):
    response = client.get(reverse("catalog:search"), {"q": "a" * 500})
    assert response.status_code == 400
    assert "at most 200 characters" in response.text


def test_search_page_lists_matching_people(client, catalogue):
    response = client.get(reverse("catalog:search"), {"q": "coppola"})
    assert "Francis Ford Coppola" in response.text
