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


def write_hetrec(folder, films, directors):
    """A HetRec 2011 folder: movies.dat (Latin-1, tab-separated) with (movieID, title, imdbID without
    'tt') and movie_directors.dat (UTF-8, its header with a space where a tab belongs)."""
    folder.mkdir(exist_ok=True)
    (folder / "movies.dat").write_bytes(
        ("id\ttitle\timdbID\tspanishTitle\tyear\n"
         + "".join(f"{movie_id}\t{title}\t{imdb}\t{title}\t2000\n" for movie_id, title, imdb in films)).encode("latin-1"))
    (folder / "movie_directors.dat").write_bytes(
        ("movieID directorID\tdirectorName\n"
         + "".join(f"{movie_id}\t{ref}\t{name}\n" for movie_id, ref, name in directors)).encode("utf-8"))
    return folder


def hetrec_folder(tmp_path):
    return write_hetrec(
        tmp_path / "hetrec2011-movielens-2k-v2",
        [(1, "Toy story", "0114709"), (2571, "The Matrix", "0133093"), (424242, "Nobody's film", "9999999")],
        [(1, "john_lasseter", "John Lasseter"), (2571, "lana_wachowski", "Lana Wachowski"),
         (424242, "nobody", "Nobody Known")],
    )


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


def test_hetrec_directors_join_through_imdb_ids_and_share_people_with_imdb(tmp_path, catalogue):
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
        {"id": 603, "overview": "ok,\nover two lines", "keywords": "[]", "runtime": "136", "release_date": "1999-03-30", "title": "M"},
        {"id": 862, "overview": "ok", "keywords": "[{broken json", "runtime": "81", "release_date": "1995-10-30", "title": "T"},
    ])
    with pytest.raises(CommandError, match=r"tmdb.csv, line 4: keywords are not a JSON list"):
        run(path)
    assert not Movie.objects.exclude(synopsis="").exists()


# --- joined by identity: HetRec's movieID is not always the MovieLens movieId ----------------------------
@pytest.fixture
def films():
    """Catalogue movies as a MovieLens import leaves them (ids from links.csv)."""
    def movie(title, year, movielens_id, imdb_id):
        return Movie.objects.create(title=title, year=year, movielens_id=movielens_id, imdb_id=imdb_id)

    return {
        "seven": movie("Seven", 1995, 47, "tt0114369"),
        "samurai": movie("Seven Samurai", 1954, 2019, "tt0047478"),
        "children": movie("Children of Men", 2006, 48774, "tt0206634"),
        "gravity": movie("Gravity", 2013, 104841, "tt1454468"),
        "nobody": movie("Nobody Knows", 2004, 31000, "tt0408664"),
        "mabuse": movie("Dr. Mabuse", 1922, 4768, "tt0013086"),
        "chocolat": movie("Chocolat", 2000, 4021, "tt0241303"),
        "blade": movie("Blade Runner", 1982, 541, "tt0083658"),
    }


def crafted_hetrec(tmp_path):
    """HetRec as it really is: movieID 47 is Seven in MovieLens but Seven Samurai in HetRec (its
    imdbID says so), names whose accents were lost (U+FFFD), one person under two directorIDs,
    two HetRec films sharing one IMDb id."""
    return write_hetrec(
        tmp_path / "hetrec",
        [(47, "Shichinin no samurai", "0047478"), (2019, "Shichinin no samurai", "0047478"),
         (48774, "Children of Men", "0206634"), (104841, "Gravity", "1454468"),
         (31000, "Dare mo shiranai", "0408664"), (4768, "Dr. Mabuse", "0013086"),
         (5395, "Dr. Mabuse", "0013086"), (4021, "Chocolat", "0241303"), (541, "Blade Runner", "0083658")],
        [(47, "akira_kurosawa", "Akira Kurosawa"), (2019, "akira_kurosawa", "Akira Kurosawa"),
         (48774, "alfonso_cuaron", "Alfonso Cuar\ufffdn"), (104841, "_0190859", "Alfonso Cuar\ufffdn"),
         (31000, "162659443", "Lasse Hallstr\ufffdm"), (4768, "fritz_lang", "Fritz Lang"),
         (5395, "fritz_lang", "Fritz Lang"), (4021, "doris_doerrie", "Doris D\ufffdrrie"),
         (541, "philip_jackson", "Philip Jackson")],  # both ids right, the director another film's
    )


def crafted_imdb(tmp_path):
    rows = [{"director_name": "Alfonso Cuarón", "actor_1_name": "Clive Owen", "actor_2_name": "Julianne Moore",
             "actor_3_name": "Michael Caine", "movie_title": "Children of Men\xa0", "plot_keywords": "dystopia",
             "movie_imdb_link": "http://www.imdb.com/title/tt0206634/"},
            {"director_name": "David Fincher", "actor_1_name": "Brad Pitt", "actor_2_name": "Morgan Freeman",
             "actor_3_name": "", "movie_title": "Se7en\xa0", "plot_keywords": "serial killer",
             "movie_imdb_link": "http://www.imdb.com/title/tt0114369/"},
            {"director_name": "Ridley Scott", "movie_imdb_link": "http://www.imdb.com/title/tt0083658/"}]
    return write_csv(tmp_path / "movie_metadata.csv", IMDB_HEADER, rows)


def directors_of(movie):
    return sorted(movie.directors.values_list("name", flat=True))


def test_hetrec_rows_join_through_the_imdb_id_and_a_row_whose_ids_disagree_is_skipped(tmp_path, films):
    output = run(crafted_imdb(tmp_path), crafted_hetrec(tmp_path))
    assert directors_of(films["seven"]) == ["David Fincher"]  # never Kurosawa
    assert directors_of(films["samurai"]) == ["Akira Kurosawa"]
    assert list(Director.objects.get(name="Akira Kurosawa").movies.all()) == [films["samurai"]]
    assert "skipped 1: films whose HetRec movieID is another film in links.csv than their imdbID" in output
    assert "skipped 1: duplicate films for one IMDb id, identical (first kept)" in output  # Dr. Mabuse twice
    assert directors_of(films["mabuse"]) == ["Fritz Lang"]
    assert directors_of(films["blade"]) == ["Ridley Scott"]  # IMDB 5000 outranks HetRec on a film both credit
    assert "skipped 1: director credits contradicting IMDB 5000 for the same film" in output


def test_no_stored_name_holds_a_replacement_character_and_each_person_is_one_row(tmp_path, films):
    output = run(crafted_imdb(tmp_path), crafted_hetrec(tmp_path))
    assert not Director.objects.filter(name__contains="\ufffd").exists()
    cuaron = Director.objects.get(search_name="alfonso cuaron")  # one row for both directorIDs
    assert cuaron.name == "Alfonso Cuarón"  # spelled as IMDB 5000 spells him
    assert cuaron.imdb_name_id == "nm0190859"  # HetRec's "_0190859" is his IMDb name id
    assert sorted(cuaron.movies.values_list("title", flat=True)) == ["Children of Men", "Gravity"]
    assert directors_of(films["chocolat"]) == ["Doris Doerrie"]  # from HetRec's ASCII "doris_doerrie"
    assert directors_of(films["nobody"]) == ["Lasse Hallstrm"]  # no other spelling anywhere: the character goes
    assert "Names with a broken character (U+FFFD): 3, repaired 1 from another source's spelling, " \
           "1 from HetRec's ASCII directorID, 1 kept without the broken character" in output
    assert "kept without the broken character: Lasse Hallstrm" in output


def test_a_fuller_spelling_from_a_later_import_replaces_the_ascii_one_without_a_twin(tmp_path, films):
    run(crafted_hetrec(tmp_path))
    assert directors_of(films["children"]) == ["Alfonso Cuaron"]  # only HetRec's id to go on
    run(crafted_imdb(tmp_path))
    assert Director.objects.filter(search_name="alfonso cuaron").count() == 1
    assert directors_of(films["children"]) == ["Alfonso Cuarón"]
    chocolat = write_csv(tmp_path / "chocolat.csv", IMDB_HEADER, [
        {"director_name": "Doris Dörrie", "movie_imdb_link": "http://www.imdb.com/title/tt0241303/"}])
    run(chocolat)
    assert directors_of(films["chocolat"]) == ["Doris Dörrie"]  # "doerrie" and "dörrie" are one person
    assert Director.objects.filter(name__startswith="Doris").count() == 1


def test_reimporting_repairs_a_catalogue_the_old_importer_wrote_and_keeps_ratings_and_lists(tmp_path, films):
    from catalog.models import NotInterested, Rating, WatchlistEntry
    from tests.factories import make_rating, make_user

    # What the importer joined on HetRec's movieID left behind.
    kurosawa = Director.objects.create(name="Akira Kurosawa")
    garbled = Director.objects.create(name="Alfonso Cuar\ufffdn")
    cuaron = Director.objects.create(name="Alfonso Cuarón")
    fincher = Director.objects.create(name="David Fincher")
    films["seven"].directors.set([kurosawa, fincher])
    films["samurai"].directors.set([kurosawa])
    films["children"].directors.set([garbled, cuaron])
    films["gravity"].directors.set([garbled])
    films["blade"].directors.set([Director.objects.create(name="Philip Jackson")])
    user = make_user()
    make_rating(user, films["seven"], 4.5)
    WatchlistEntry.objects.create(user=user, movie=films["children"])
    NotInterested.objects.create(user=user, movie=films["samurai"])
    before = (list(Rating.objects.values_list("user_id", "movie_id", "score")),
              list(WatchlistEntry.objects.values_list("user_id", "movie_id")),
              list(NotInterested.objects.values_list("user_id", "movie_id")))

    output = run(crafted_imdb(tmp_path), crafted_hetrec(tmp_path))

    assert directors_of(films["seven"]) == ["David Fincher"]
    assert directors_of(films["samurai"]) == ["Akira Kurosawa"]
    assert list(Director.objects.filter(search_name="alfonso cuaron").values_list("name", flat=True)) == ["Alfonso Cuarón"]
    assert directors_of(films["children"]) == ["Alfonso Cuarón"] and directors_of(films["gravity"]) == ["Alfonso Cuarón"]
    assert not Director.objects.filter(name__contains="\ufffd").exists()
    assert (list(Rating.objects.values_list("user_id", "movie_id", "score")),
            list(WatchlistEntry.objects.values_list("user_id", "movie_id")),
            list(NotInterested.objects.values_list("user_id", "movie_id"))) == before
    assert "2 wrong director credits removed" in output and "Akira Kurosawa no longer credited with Seven (1995)" in output
    assert directors_of(films["blade"]) == ["Ridley Scott"] and not Director.objects.filter(name="Philip Jackson").exists()
    counts = (Director.objects.count(), Movie.directors.through.objects.count())
    run(crafted_imdb(tmp_path), crafted_hetrec(tmp_path))
    assert (Director.objects.count(), Movie.directors.through.objects.count()) == counts  # repaired once


def test_evaluation_metadata_joins_the_same_way_as_the_import(tmp_path, films):
    from catalog.importers.formats import MovieRecord
    from catalog.importers.metadata import metadata_records

    movies = [MovieRecord(m.movielens_id, m.title, m.year, imdb_id=m.imdb_id) for m in films.values()]
    records = metadata_records([crafted_imdb(tmp_path), crafted_hetrec(tmp_path)], movies)
    assert records[47].directors == ["David Fincher"]
    assert records[2019].directors == ["Akira Kurosawa"]
    assert records[48774].directors == ["Alfonso Cuarón"] and records[104841].directors == ["Alfonso Cuarón"]
    assert records[48774].actors == ["Clive Owen", "Julianne Moore", "Michael Caine"]
    assert records[541].directors == ["Ridley Scott"]


def test_hetrec_without_movies_dat_is_refused_because_movie_ids_alone_are_not_identities(tmp_path, films):
    folder = crafted_hetrec(tmp_path)
    (folder / "movies.dat").unlink()
    with pytest.raises(CommandError, match="movies.dat is missing: HetRec films are identified by its imdbID"):
        run(folder)


def test_malformed_hetrec_rows_name_file_line_and_reason(tmp_path, films):
    folder = crafted_hetrec(tmp_path)
    good = (folder / "movie_directors.dat").read_bytes()
    (folder / "movie_directors.dat").write_bytes(good + b"4021\tx\tToo\tMany\n")
    with pytest.raises(CommandError, match=r"movie_directors.dat, line 11: wrong number of fields: expected 3, found 4"):
        run(folder)
    (folder / "movie_directors.dat").write_bytes(good + b"4021\tx\tD\xf6rrie\n")
    with pytest.raises(CommandError, match=r"movie_directors.dat, line 11: bad encoding: not valid UTF-8"):
        run(folder)
    (folder / "movie_directors.dat").write_bytes(good + b"forty\tx\tSomeone\n")
    with pytest.raises(CommandError, match=r"movie_directors.dat, line 11: movieID is not a number: 'forty'"):
        run(folder)
    assert not Director.objects.exists()
