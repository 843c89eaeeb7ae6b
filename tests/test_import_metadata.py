"""import_metadata: TMDB 5000, IMDB 5000 and HetRec 2011 files (tiny ones built here, real column layouts)."""
import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Actor, CastMember, Director, Keyword, Movie

pytestmark = pytest.mark.django_db

TMDB_HEADER = (
    "budget,genres,homepage,id,keywords,original_language,original_title,overview,popularity,production_companies,"
    "production_countries,release_date,revenue,runtime,spoken_languages,status,tagline,title,vote_average,vote_count"
).split(",")
IMDB_HEADER = (
    "color,director_name,num_critic_for_reviews,duration,director_facebook_likes,actor_3_facebook_likes,actor_2_name,"
    "actor_1_facebook_likes,gross,genres,actor_1_name,movie_title,num_voted_users,cast_total_facebook_likes,actor_3_name,"
    "facenumber_in_poster,plot_keywords,movie_imdb_link,num_user_for_reviews,language,country,content_rating,budget,"
    "title_year,actor_2_facebook_likes,imdb_score,aspect_ratio,movie_facebook_likes"
).split(",")


@pytest.fixture
def catalogue():
    matrix = Movie.objects.create(title="The Matrix", year=1999, movielens_id=2571, imdb_id="tt0133093", tmdb_id=603)
    toy = Movie.objects.create(title="Toy Story", year=1995, movielens_id=1, imdb_id="tt0114709", tmdb_id=862)
    obscure = Movie.objects.create(title="Obscure", year=2001, movielens_id=99, imdb_id="tt0000099", tmdb_id=99)
    return matrix, toy, obscure


def write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def tmdb_file(tmp_path):
    return write_csv(
        tmp_path / "tmdb_5000_movies.csv",
        TMDB_HEADER,
        [
            {"id": 603, "title": "The Matrix", "overview": "A hacker learns the truth,\nand fights.", "runtime": "136.0",
             "release_date": "1999-03-30", "keywords": json.dumps([{"id": 1, "name": "saving the world"}, {"id": 2, "name": "hacker"}])},
            {"id": 862, "title": "Toy Story", "overview": "", "runtime": "", "release_date": "", "keywords": "[]"},
            {"id": 123456, "title": "Not in our catalogue", "overview": "x", "runtime": "90", "release_date": "2000-01-01", "keywords": "[]"},
        ],
    )


def imdb_file(tmp_path):
    row = {
        "director_name": "Lana Wachowski", "actor_1_name": "Keanu Reeves", "actor_2_name": "Laurence Fishburne",
        "actor_3_name": "Carrie-Anne Moss", "movie_title": "The Matrix\xa0", "plot_keywords": "simulated reality|hacker",
        "movie_imdb_link": "http://www.imdb.com/title/tt0133093/?ref_=fn_tt_tt_1",
    }
    toy = {"director_name": "", "actor_1_name": "Tom Hanks", "actor_2_name": "", "actor_3_name": "",
           "movie_title": "Toy Story\xa0", "plot_keywords": "", "movie_imdb_link": "http://www.imdb.com/title/tt0114709/"}
    return write_csv(tmp_path / "movie_metadata.csv", IMDB_HEADER, [row, dict(row), toy])


def hetrec_folder(tmp_path):
    folder = tmp_path / "hetrec2011-movielens-2k-v2"
    folder.mkdir()
    (folder / "movie_directors.dat").write_bytes(
        "movieID directorID\tdirectorName\n1\tjohn_lasseter\tJohn Lasseter\n2571\tlana_wachowski\tLana Wachowski\n"
        "424242\tnobody\tNobody Known\n".encode("utf-8")
    )
    (folder / "movies.dat").write_bytes("id\ttitle\n1\tToy story\n".encode("latin-1"))
    return folder


def run(*paths):
    out = io.StringIO()
    call_command("import_metadata", *map(str, paths), stdout=out)
    return out.getvalue()


def test_tmdb_gives_synopsis_runtime_release_date_and_keywords(tmp_path, catalogue):
    matrix, toy, _ = catalogue
    output = run(tmdb_file(tmp_path))
    matrix.refresh_from_db()
    assert matrix.synopsis == "A hacker learns the truth,\nand fights."
    assert matrix.runtime == 136 and str(matrix.release_date) == "1999-03-30"
    assert sorted(matrix.keywords.values_list("name", flat=True)) == ["hacker", "saving the world"]
    toy.refresh_from_db()
    assert toy.synopsis == "" and toy.runtime is None  # partial metadata: the movie is untouched
    assert "skipped 1: rows matching no catalogue movie" in output


def test_imdb_gives_director_actors_in_billing_order_and_keywords_despite_duplicates(tmp_path, catalogue):
    matrix, toy, _ = catalogue
    run(imdb_file(tmp_path))
    assert list(matrix.directors.values_list("name", flat=True)) == ["Lana Wachowski"]
    assert [c.actor.name for c in CastMember.objects.filter(movie=matrix).order_by("order")] == [
        "Keanu Reeves", "Laurence Fishburne", "Carrie-Anne Moss"]
    assert sorted(matrix.keywords.values_list("name", flat=True)) == ["hacker", "simulated reality"]
    assert list(toy.actors.values_list("name", flat=True)) == ["Tom Hanks"] and not toy.directors.exists()
    assert Actor.objects.get(name="Keanu Reeves").search_name == "keanu reeves"


def test_hetrec_directors_join_on_movielens_ids_and_share_people_with_imdb(tmp_path, catalogue):
    matrix, toy, _ = catalogue
    run(imdb_file(tmp_path), hetrec_folder(tmp_path))
    assert list(toy.directors.values_list("name", flat=True)) == ["John Lasseter"]
    assert Director.objects.filter(name="Lana Wachowski").count() == 1
    assert not Director.objects.filter(name="Nobody Known").exists()


def test_importing_the_same_metadata_again_changes_nothing(tmp_path, catalogue):
    paths = [tmdb_file(tmp_path), imdb_file(tmp_path), hetrec_folder(tmp_path)]
    run(*paths)
    counts = lambda: (Keyword.objects.count(), Director.objects.count(), Actor.objects.count(), CastMember.objects.count(),  # noqa: E731
                      Movie.keywords.through.objects.count(), Movie.directors.through.objects.count())
    before = counts()
    stamps = list(Movie.objects.order_by("pk").values_list("updated_at", flat=True))
    run(*paths)
    assert counts() == before
    assert list(Movie.objects.order_by("pk").values_list("updated_at", flat=True)) == stamps


def test_unrecognised_file_is_rejected_before_any_file_is_imported(tmp_path, catalogue):
    stray = tmp_path / "stray.csv"
    stray.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(CommandError, match="stray.csv, line 1: unrecognised columns"):
        run(tmdb_file(tmp_path), stray)
    assert not Keyword.objects.exists()


def test_malformed_tmdb_row_names_file_and_line_and_writes_nothing(tmp_path, catalogue):
    path = write_csv(tmp_path / "tmdb.csv", TMDB_HEADER, [
        {"id": 603, "overview": "ok", "keywords": "[]", "runtime": "136", "release_date": "1999-03-30", "title": "M"},
        {"id": 862, "overview": "ok", "keywords": "[{broken json", "runtime": "81", "release_date": "1995-10-30", "title": "T"},
    ])
    with pytest.raises(CommandError, match=r"tmdb.csv, line 3: malformed value"):
        run(path)
    assert not Movie.objects.exclude(synopsis="").exists()
