"""Similar movies on ml-latest-small with its metadata: how many of a film's 10 nearest share a genre.

Fits the served recommender on ml-latest-small (BENCH_SMALL_PATH) with the TMDB 5000, IMDB 5000
and HetRec 2011 metadata (BENCH_METADATA_DIR, the folder holding them, as README "Real data"),
then for every film with at least 20 ratings counts how many of its 10 most similar films
(Recommender.similar_items) share at least one genre with it: the mean and the worst 5% (5th
percentile). The same figures for a reference measured in the same run: LightFM item-embedding
cosine blended with the TF-IDF content cosine, the similar-movies rule before issue #12. Also the
mean popularity percentile of the neighbours (a list of merely popular films scores high).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
SMALL = Path(os.environ.get("BENCH_SMALL_PATH", DATASETS / "ml-latest-small"))
METADATA = Path(os.environ.get("BENCH_METADATA_DIR", DATASETS))
MIN_RATINGS = 20
K = 10


def _setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "movierec.settings")
    import django

    django.setup()


def reference_neighbours(model, item: int, n: int) -> np.ndarray:
    """The rule before issue #12: content cosine and LightFM cosine, content trusted more for films
    with few ratings."""
    from recommendations import engine

    content = np.asarray((model.tfidf @ model.tfidf[item].T).todense()).ravel()
    collab = model.item_unit @ model.item_unit[item]
    evidence = min(1.0, float(model.popularity[item]) / 20.0)
    w_content = 0.5 + 0.5 * (1 - evidence)
    score = w_content * content + (1 - w_content) * collab
    score[item] = -np.inf
    return engine.top_k(score, n)


def figures(model, films, neighbours_of) -> dict:
    from recommendations.metrics import popularity_percentiles

    percentiles = popularity_percentiles(model.popularity)
    shared, popularity = [], []
    started = time.perf_counter()
    for i in films.tolist():
        best = neighbours_of(i)
        genres = set(model.item_genres[i])
        shared.append(sum(1 for j in best.tolist() if genres & set(model.item_genres[j])))
        popularity.append(percentiles[best].mean())
    seconds = (time.perf_counter() - started) / len(films)
    shared = np.array(shared)
    return {"mean": shared.mean(), "worst5": np.percentile(shared, 5), "below7": float(np.mean(shared < 7)),
            "popularity": float(np.mean(popularity)), "ms": seconds * 1000}


def main():
    _setup_django()
    from recommendations.evaluation import load_release
    from recommendations.recommender import fit_recommender

    metadata = [METADATA / "tmdb-5000" / "tmdb_5000_movies.csv",
                METADATA / "imdb-5000-movie-metadata" / "movie_metadata.csv",
                METADATA / "hetrec2011-movielens-2k-v2"]
    data = load_release(SMALL, [p for p in metadata if p.exists()])
    started = time.perf_counter()
    model = fit_recommender(data)
    print(f"fit on {SMALL.name} with {sum(p.exists() for p in metadata)} metadata sources: {time.perf_counter() - started:.0f} s")
    films = np.flatnonzero(model.popularity >= MIN_RATINGS)
    ours = figures(model, films, lambda i: model.similar_items(i, K)[0])
    reference = figures(model, films, lambda i: reference_neighbours(model, i, K))
    print(f"films with >= {MIN_RATINGS} ratings: {len(films)}; of each film's {K} most similar, how many share a genre:")
    for label, f in (("similar_items", ours), ("reference (LightFM + content cosine)", reference)):
        print(f"  {label:38s} mean {f['mean']:.2f}  worst 5% {f['worst5']:.0f}  films under 7: {f['below7']:.1%}  "
              f"neighbours' popularity percentile {f['popularity']:.1f}  {f['ms']:.1f} ms/film")
    print(f"  ratio similar_items / reference: mean {ours['mean'] / reference['mean']:.3f}, "
          f"films under 7 {ours['below7'] / max(reference['below7'], 1e-9):.2f}x, time {ours['ms'] / reference['ms']:.2f}x")
    titles = list(model.item_titles)
    for title in ("Seven", "Toy Story", "Pretty Woman", "Aliens"):
        if title in titles:
            i = titles.index(title)
            print(f"  {title}: " + ", ".join(titles[j] for j in model.similar_items(i, K)[0].tolist()))
