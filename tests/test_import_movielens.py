"""import_movielens: every published layout, idempotent re-imports, and malformed input rejected whole.

Each test writes its own tiny release in the publisher's layout (never the real data).
"""
import io
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from catalog.importers.formats import open_release, parse_title
from catalog.models import Genre, Movie, Rating, Tag

pytestmark = pytest.mark.django_db

MOVIES_CSV = """movieId,title,genres
1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy
2,"Matrix, The (1999)",Action|Sci-Fi|Thriller
3,"Cité des enfants perdus, La (City of Lost Children, The) (1995)",Adventure|Fantasy
4,Babylon 5,(no genres listed)
"""
LINKS_CSV = """movieId,imdbId,tmdbId
1,0114709,862
2,0133093,603
3,0112682,902
4,0105946,
"""
RATINGS_CSV = """userId,movieId,rating,timestamp
1,1,4.0,964982703
1,2,5.0,964981247
2,1,3.5,1445714994
2,3,0.5,1445714995
3,4,2.5,1445714996
"""
TAGS_CSV = """userId,movieId,tag,timestamp
2,2,"mind-bending, philosophical",1445714994
3,1,pixar,1445714996
"""


def write_release(folder: Path, files: dict, encoding="utf-8") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return folder


def csv_release(folder, **overrides):
    files = {"movies.csv": MOVIES_CSV, "links.csv": LINKS_CSV, "ratings.csv": RATINGS_CSV, "tags.csv": TAGS_CSV}
    files.update(overrides)
    return write_release(folder, files)


def run_import(path):
    out = io.StringIO()
    call_command("import_movielens", str(path), "--no-progress", stdout=out)
    return out.getvalue()


def catalogue_counts():
    return (
        Movie.objects.count(),
        User.objects.filter(source=User.Source.MOVIELENS).count(),
        Rating.objects.count(),
        Tag.objects.count(),
    )


def test_csv_release_imports_readable_titles_years_genres_links_ratings_and_tags(tmp_path):
    output = run_import(csv_release(tmp_path / "ml-latest-small"))

    assert catalogue_counts() == (4, 3, 5, 2)
    matrix = Movie.objects.get(movielens_id=2)
    assert (matrix.title, matrix.year, matrix.imdb_id, matrix.tmdb_id) == ("The Matrix", 1999, "tt0133093", 603)
    assert sorted(matrix.genres.values_list("name", flat=True)) == ["Action", "Sci-Fi", "Thriller"]
    lost = Movie.objects.get(movielens_id=3)
    assert lost.title == "La Cité des enfants perdus"
    assert lost.alternative_titles == "The City of Lost Children"
    assert "city of lost children" in lost.search_title
    babylon = Movie.objects.get(movielens_id=4)
    assert babylon.year is None and babylon.tmdb_id is None and not babylon.genres.exists()
    assert not Genre.objects.filter(name__icontains="no genres").exists()
    assert Rating.objects.get(user__external_id="2", movie=lost).score == 0.5
    assert Tag.objects.get(user__external_id="2").tag == "mind-bending, philosophical"
    assert matrix.rating_count == 1 and matrix.rating_mean == 5.0
    assert "Ratings:" in output and "Skipped" in output


def test_imported_users_are_marked_and_cannot_sign_in(tmp_path):
    run_import(csv_release(tmp_path / "rel"))
    user = User.objects.get(source=User.Source.MOVIELENS, external_id="1")
    assert user.username == "ml-1"
    assert user.is_imported
    assert not user.has_usable_password()


def test_zip_from_the_publisher_imports_like_the_folder(tmp_path):
    folder = csv_release(tmp_path / "ml-latest-small")
    archive = tmp_path / "ml-latest-small.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for file in folder.iterdir():
            zf.write(file, f"ml-latest-small/{file.name}")
    run_import(archive)
    assert catalogue_counts() == (4, 3, 5, 2)


ML100K_ITEM = (
    "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "2|Cité des enfants perdus, La (1995)|01-Jan-1995||http://x|0|0|1|0|0|0|0|0|0|1|0|0|0|0|0|0|1|0|0\n"
    "3|unknown|||http://x|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
)
ML100K_GENRE = (
    "unknown|0\nAction|1\nAdventure|2\nAnimation|3\nChildren's|4\nComedy|5\nCrime|6\nDocumentary|7\nDrama|8\n"
    "Fantasy|9\nFilm-Noir|10\nHorror|11\nMusical|12\nMystery|13\nRomance|14\nSci-Fi|15\nThriller|16\nWar|17\n"
    "Western|18\n\n"
)


def ml100k_release(folder, **overrides):
    files = {
        "u.item": ML100K_ITEM.encode("latin-1"),
        "u.genre": ML100K_GENRE,
        "u.user": "1|24|M|technician|85711\n2|53|F|other|94043\n3|30|M|none|T8H1N\n",
        "u.occupation": "technician\nother\nnone\n",
        "u.data": "1\t1\t5\t874965758\n1\t2\t3\t876893171\n2\t1\t4\t878542960\n3\t3\t1\t876893119\n",
    }
    files.update(overrides)
    return write_release(folder, files)


def test_ml100k_imports_latin1_titles_integer_stars_genre_flags_and_demographics(tmp_path):
    run_import(ml100k_release(tmp_path / "ml-100k"))

    assert catalogue_counts() == (3, 3, 4, 0)
    toy = Movie.objects.get(movielens_id=1)
    assert (toy.title, toy.year) == ("Toy Story", 1995)
    assert sorted(toy.genres.values_list("name", flat=True)) == ["Animation", "Children", "Comedy"]
    assert Movie.objects.get(movielens_id=2).title == "La Cité des enfants perdus"
    assert not Movie.objects.get(movielens_id=3).genres.exists()
    assert Rating.objects.get(user__external_id="1", movie=toy).score == 5.0
    user = User.objects.get(source=User.Source.MOVIELENS, external_id="2")
    assert (user.gender, user.occupation, user.birth_year) == ("F", "other", 1998 - 53)
    assert User.objects.get(external_id="3", source=User.Source.MOVIELENS).occupation == ""


def ml1m_release(folder):
    return write_release(
        folder,
        {
            "movies.dat": "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Misérables, Les (1995)::Drama|War\n".encode(
                "latin-1"
            ),
            "users.dat": "1::F::1::10::48067\n2::M::56::16::70072\n",
            "ratings.dat": "1::1::5::978300760\n1::2::3::978302109\n2::2::4::978301968\n",
        },
    )


def test_ml1m_maps_age_and_occupation_codes_to_readable_profile_fields(tmp_path):
    run_import(ml1m_release(tmp_path / "ml-1m"))

    assert catalogue_counts() == (2, 2, 3, 0)
    assert Movie.objects.get(movielens_id=2).title == "Les Misérables"
    assert "Children" in Movie.objects.get(movielens_id=1).genres.values_list("name", flat=True)
    young = User.objects.get(source=User.Source.MOVIELENS, external_id="1")
    assert (young.gender, young.occupation) == ("F", "K-12 student")
    assert young.birth_year > 1980
    old = User.objects.get(source=User.Source.MOVIELENS, external_id="2")
    assert old.occupation == "self-employed" and old.birth_year < 1945


def test_ml1m_users_get_readable_age_ranges_from_the_reader(tmp_path):
    release = open_release(ml1m_release(tmp_path / "ml-1m"))
    assert release.format == "ml-1m"
    assert [u.age_range for u in release.iter_users()] == ["Under 18", "56+"]


def test_ml10m_imports_half_stars_and_tags_without_a_users_file(tmp_path):
    folder = write_release(
        tmp_path / "ml-10M100K",
        {
            "movies.dat": "1::Toy Story (1995)::Adventure|Animation\n2::Jumanji (1995)::Adventure\n",
            "ratings.dat": "1::1::4.5::838985046\n1::2::3::838983525\n7::2::0.5::838983392\n",
            "tags.dat": "15::1::pixar::1215184630\n7::2::board game::1188263867\n",
        },
    )
    assert open_release(folder).format == "ml-10m"
    run_import(folder)
    assert catalogue_counts() == (2, 3, 3, 2)
    assert Rating.objects.get(user__external_id="1", movie__movielens_id=1).score == 4.5


def test_reimporting_the_same_release_changes_nothing(tmp_path):
    folder = csv_release(tmp_path / "rel")
    run_import(folder)
    before = catalogue_counts()
    snapshot = list(Rating.objects.order_by("pk").values_list("pk", "score", "updated_at"))
    movie_stamps = list(Movie.objects.order_by("pk").values_list("pk", "updated_at"))

    output = run_import(folder)

    assert catalogue_counts() == before
    assert list(Rating.objects.order_by("pk").values_list("pk", "score", "updated_at")) == snapshot
    assert list(Movie.objects.order_by("pk").values_list("pk", "updated_at")) == movie_stamps
    assert "0 new or changed" in output


def test_newer_release_updates_changed_ratings_and_adds_new_ones(tmp_path):
    run_import(csv_release(tmp_path / "old"))
    newer_ratings = RATINGS_CSV.replace("1,2,5.0,964981247", "1,2,3.0,1500000000") + "4,2,4.5,1500000001\n"
    newer_movies = MOVIES_CSV + "5,Heat (1995),Action|Crime|Thriller\n"
    run_import(csv_release(tmp_path / "new", **{"ratings.csv": newer_ratings, "movies.csv": newer_movies}))

    assert catalogue_counts() == (5, 4, 6, 2)
    changed = Rating.objects.get(user__external_id="1", movie__movielens_id=2)
    assert changed.score == 3.0
    assert changed.updated_at.year == 2017 and changed.created_at.year == 2000
    assert Movie.objects.get(movielens_id=2).rating_mean == pytest.approx((3.0 + 4.5) / 2)


MALFORMED = {
    "wrong delimiter": ({"ratings.csv": RATINGS_CSV.replace(",", ";")}, "ratings.csv", 1, "wrong delimiter"),
    "truncated row": ({"ratings.csv": RATINGS_CSV + "3,1,4.0\n"}, "ratings.csv", 7, "truncated row"),
    "rating above the scale": ({"ratings.csv": RATINGS_CSV.replace("964982703", "1") + "9,1,6,1\n"}, "ratings.csv", 7, "outside the scale"),
    "rating between half stars": ({"ratings.csv": RATINGS_CSV + "9,2,0.3,1\n"}, "ratings.csv", 7, "outside the scale"),
    "rating for an unknown movie": ({"ratings.csv": RATINGS_CSV + "9,999,4.0,1\n"}, "ratings.csv", 7, "unknown movie 999"),
    "bad encoding in ratings": ({"ratings.csv": RATINGS_CSV.encode() + b"9,1,4.0,1\xff\n"}, "ratings.csv", 7, "bad encoding"),
    "user id that is not a number": ({"ratings.csv": RATINGS_CSV + "u9,1,4.0,1\n"}, "ratings.csv", 7, "user id is not a whole number"),
    "bad encoding": ({"movies.csv": MOVIES_CSV.encode("utf-8") + "5,Amélie (2001),Comedy\n".encode("latin-1")}, "movies.csv", 6, "bad encoding"),
    # Values past what the database (64-bit and 32-bit integers) or a datetime can hold.
    "timestamp past 64 bits": ({"ratings.csv": RATINGS_CSV + "9,1,4.0,99999999999999999999\n"}, "ratings.csv", 7, "timestamp '99999999999999999999' is out of range"),
    "timestamp past the year 9999": ({"ratings.csv": RATINGS_CSV + "9,1,4.0,9999999999999999\n"}, "ratings.csv", 7, "timestamp '9999999999999999' is out of range"),
    "user id past 64 bits": ({"ratings.csv": RATINGS_CSV + "99999999999999999999,1,4.0,1\n"}, "ratings.csv", 7, "user id '99999999999999999999' is out of range"),
    "a 5,000-digit movie id": ({"ratings.csv": RATINGS_CSV + "9," + "9" * 5000 + ",4.0,1\n"}, "ratings.csv", 7, "movie id '9999"),
    "movie id past 32 bits": ({"movies.csv": MOVIES_CSV + "3000000000,Heat (1995),Action\n"}, "movies.csv", 6, "movieId '3000000000' is out of range"),
    "tmdb id past 64 bits": ({"links.csv": LINKS_CSV + "5,0113277,99999999999999999999\n"}, "links.csv", 6, "tmdbId '99999999999999999999' is out of range"),
    "tag timestamp past 64 bits": ({"tags.csv": TAGS_CSV + "3,2,noir,99999999999999999999\n"}, "tags.csv", 4, "timestamp '99999999999999999999' is out of range"),
    "title longer than the catalogue holds": ({"movies.csv": MOVIES_CSV + "5," + "A" * 400 + " (1995),Action\n"}, "movies.csv", 6, "title longer than 300 characters"),
    # A line longer than the reader takes (the csv module's own field limit crashed on a long quoted title).
    "a 140 KB quoted title": ({"movies.csv": MOVIES_CSV + '5,"' + "A" * 140_000 + ' (1995)",Action\n'}, "movies.csv", 6, "line longer than 65,536 bytes"),
    "a 140 KB ratings line": ({"ratings.csv": RATINGS_CSV + "9,1,4.0,1" + "," * 140_000 + "\n"}, "ratings.csv", 7, "line longer than 65,536 bytes"),
}


@pytest.mark.parametrize("case", MALFORMED.keys())
def test_malformed_release_is_rejected_with_file_line_and_reason_and_nothing_written(tmp_path, case):
    overrides, file, line, reason = MALFORMED[case]
    with pytest.raises(CommandError) as error:
        run_import(csv_release(tmp_path / "bad", **overrides))
    message = str(error.value)
    assert file in message and f"line {line}" in message and reason in message
    assert catalogue_counts() == (0, 0, 0, 0)
    assert not Genre.objects.exists()


def test_malformed_newer_release_leaves_the_previous_import_untouched(tmp_path):
    run_import(csv_release(tmp_path / "good"))
    before = list(Rating.objects.order_by("pk").values_list("pk", "score"))
    broken = RATINGS_CSV.replace("1,2,5.0", "1,2,1.0") + "1,1\n"
    with pytest.raises(CommandError, match="ratings.csv, line 7: truncated row"):
        run_import(csv_release(tmp_path / "bad", **{"ratings.csv": broken}))
    assert list(Rating.objects.order_by("pk").values_list("pk", "score")) == before


def test_ml100k_wrong_delimiter_and_truncated_rows_are_named(tmp_path):
    with pytest.raises(CommandError, match=r"u.data, line 2: wrong delimiter"):
        run_import(ml100k_release(tmp_path / "a", **{"u.data": "1\t1\t5\t874965758\n1,2,3,876893171\n"}))
    with pytest.raises(CommandError, match=r"u.data, line 1: truncated row"):
        run_import(ml100k_release(tmp_path / "b", **{"u.data": "1\t1\t5\n"}))
    assert catalogue_counts() == (0, 0, 0, 0)


def test_folder_without_a_release_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CommandError, match="no MovieLens release found"):
        run_import(tmp_path)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Matrix, The (1999)", ("The Matrix", 1999, ())),
        ("Seven (a.k.a. Se7en) (1995)", ("Seven", 1995, ("Se7en",))),
        ("Postman, The (Postino, Il) (1994)", ("The Postman", 1994, ("Il Postino",))),
        ("Avventura, L' (1960)", ("L'Avventura", 1960, ())),
        ("Boot, Das (1981)", ("Das Boot", 1981, ())),
        ("Laberinto del fauno, El (2006)", ("El Laberinto del fauno", 2006, ())),
        ("Me, Myself and I (2000)", ("Me, Myself and I", 2000, ())),
        ("(500) Days of Summer (2009)", ("(500) Days of Summer", 2009, ())),
        ("Babylon 5", ("Babylon 5", None, ())),
    ],
)
def test_titles_read_the_way_people_write_them(raw, expected):
    assert parse_title(raw) == expected


def test_bulk_load_path_restores_every_index_and_foreign_key(tmp_path, monkeypatch):
    from django.db import connection

    from catalog.importers import movielens

    monkeypatch.setattr(movielens, "BULK_PATH_MIN_ROWS", 1)  # take the big-load path with a tiny release

    def rating_constraints():
        with connection.cursor() as cursor:
            found = connection.introspection.get_constraints(cursor, Rating._meta.db_table)
        return {name: (c["columns"], c["unique"], c["index"], c["foreign_key"]) for name, c in found.items()}

    before = rating_constraints()
    run_import(csv_release(tmp_path / "rel"))
    assert rating_constraints() == before
    assert catalogue_counts() == (4, 3, 5, 2)

    newer = RATINGS_CSV.replace("1,2,5.0,964981247", "1,2,3.0,1500000000") + "4,2,4.5,1500000001\n"
    run_import(csv_release(tmp_path / "newer", **{"ratings.csv": newer}))
    assert rating_constraints() == before
    assert catalogue_counts() == (4, 4, 6, 2)
    assert Rating.objects.get(user__external_id="1", movie__movielens_id=2).score == 3.0


@pytest.mark.parametrize("bulk_path", [False, True])
def test_a_pair_rated_twice_in_separate_blocks_is_rejected_and_nothing_written(tmp_path, monkeypatch, bulk_path):
    from catalog.importers import movielens

    if bulk_path:
        monkeypatch.setattr(movielens, "BULK_PATH_MIN_ROWS", 1)
    # User 1 rates movie 2 again after other users' ratings: the reader cannot see it, the import must.
    twice = RATINGS_CSV + "1,2,1.0,1500000002\n"
    with pytest.raises(CommandError, match="Nothing was imported.*(more than once|one_rating_per_user_and_movie)"):
        run_import(csv_release(tmp_path / "twice", **{"ratings.csv": twice}))
    assert catalogue_counts() == (0, 0, 0, 0)


def test_a_file_linking_out_of_the_release_folder_is_refused_unread(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:the first line of someone else's file\n")
    folder = csv_release(tmp_path / "rel")
    (folder / "movies.csv").unlink()
    (folder / "movies.csv").symlink_to(secret)

    with pytest.raises(CommandError) as error:
        run_import(folder)

    message = str(error.value)
    assert "movies.csv" in message and "outside the release folder" in message
    assert "root:x" not in message
    assert catalogue_counts() == (0, 0, 0, 0)


def test_a_link_inside_the_release_folder_is_read(tmp_path):
    folder = csv_release(tmp_path / "rel")
    (folder / "data").mkdir()
    (folder / "movies.csv").rename(folder / "data" / "movies.csv")
    (folder / "movies.csv").symlink_to(folder / "data" / "movies.csv")

    run_import(folder)

    assert catalogue_counts() == (4, 3, 5, 2)
