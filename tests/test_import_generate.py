"""generate_ratings writes an importable MovieLens release with the requested size and a realistic shape."""
import csv
from collections import Counter

import pytest
from django.core.management import CommandError, call_command

from catalog.importers.formats import open_release


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "release"
    call_command("generate_ratings", "--users", "300", "--movies", "800", "--ratings", "30000", "--out", str(out),
                 "--seed", "7", "--no-progress")
    return out


def test_generated_release_has_the_requested_counts_and_unique_pairs(generated):
    release = open_release(generated)
    assert release.format == "csv-latest"
    ratings = list(release.iter_ratings())  # the strict reader accepts every row
    assert len(ratings) == 30000
    assert len({(user, movie) for user, movie, _, _ in ratings}) == 30000
    assert len({user for user, *_ in ratings}) == 300
    assert len(list(release.iter_movies())) == 800


def test_generated_scores_are_half_stars_centred_like_movielens(generated):
    with open(generated / "ratings.csv") as handle:
        scores = Counter(float(row["rating"]) for row in csv.DictReader(handle))
    assert set(scores) <= {x / 2 for x in range(1, 11)}
    assert scores[3.5] > 0 and scores[4.5] > 0  # half stars are used
    assert scores.most_common(1)[0][0] in (3.0, 4.0)
    mean = sum(s * n for s, n in scores.items()) / sum(scores.values())
    assert 3.0 < mean < 4.0


def test_popularity_and_activity_are_long_tailed(generated):
    with open(generated / "ratings.csv") as handle:
        rows = list(csv.DictReader(handle))
    per_movie = sorted(Counter(r["movieId"] for r in rows).values(), reverse=True)
    per_user = sorted(Counter(r["userId"] for r in rows).values(), reverse=True)
    assert sum(per_movie[: len(per_movie) // 10]) > 0.3 * len(rows)  # top 10% of movies: a big share
    assert per_user[0] > 5 * per_user[len(per_user) // 2]  # heavy raters far above the median


def test_impossible_sizes_are_refused(tmp_path):
    with pytest.raises(CommandError, match="more ratings"):
        call_command("generate_ratings", "--users", "2", "--movies", "3", "--ratings", "7", "--out", str(tmp_path),
                     "--no-progress")
