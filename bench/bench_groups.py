"""Watch together: leave-one-out hit rate of the group strategies on ml-latest-small.

Random groups of 2–4 users (seeded). For each group, one film every member rated 4 stars or
more is held out together with all the members' ratings of it; the recommender is fitted on
the rest and the group's top 10 is computed exactly as the site does (recommendations.
group_ranking: candidates from each member's served ranking, then their predicted stars under
the strategy; the default floor, group_ranking.DEFAULT_FLOOR). A hit is the held-out film in the top 10. Groups are drawn in batches of users
who share no group, so one fit serves a whole batch (a batch holds out well under 1% of the
ratings). Prints the hit rate of each strategy with a 95% Wilson interval, against averaging
popularity (the most rated films nobody in the group rated), and plots it.

Also times one group list (4 members) against one member's own top-N in the same run.

Environment: BENCH_SMALL_PATH (the release), BENCH_GROUPS (600), BENCH_GROUP_SEED (16),
BENCH_GROUPS_OUT (bench/results: the plot and a JSON of the figures).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
SMALL = Path(os.environ.get("BENCH_SMALL_PATH", ROOT.parent / "shared" / "datasets" / "ml-latest-small"))
GROUPS = int(os.environ.get("BENCH_GROUPS", "600"))
SEED = int(os.environ.get("BENCH_GROUP_SEED", "16"))
OUT = Path(os.environ.get("BENCH_GROUPS_OUT", ROOT / "bench" / "results"))
K = 10
LIKED = 4.0
SIZES = (2, 3, 4)
DRAWS_PER_GROUP = 500
FLOORS = (2.5, 3.0, 3.5)
TIMING_REPEATS = 20

STRATEGY_ROWS = ("average_without_misery", "least_misery", "most_pleasure")
REFERENCE_ROWS = ("average of predicted stars alone", "average of served scores", "popularity")


def _setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "movierec.settings")
    import django

    django.setup()


def draw_batch(liked: list[set], rng: np.random.Generator, wanted: int) -> list[tuple[list[int], int]]:
    """Up to ``wanted`` groups of users no two of which share a group, each with a film every
    member liked: [(members, held-out film)]. Each group's size is drawn uniformly from SIZES,
    then its members at random among the free users until some film is liked by all of them."""
    free = set(range(len(liked)))
    batch = []
    while len(batch) < wanted and len(free) >= 2 * max(SIZES):
        size = int(rng.choice(SIZES))
        for _ in range(DRAWS_PER_GROUP):
            members = rng.choice(sorted(free), size=size, replace=False).tolist()
            common = set.intersection(*(liked[u] for u in members))
            if common:
                batch.append((members, int(rng.choice(sorted(common)))))
                free -= set(members)
                break
        else:
            break
    return batch


def wilson(hits: int, n: int) -> tuple[float, float]:
    from scipy.stats import binomtest

    interval = binomtest(hits, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)


def main():
    _setup_django()
    from recommendations import engine, group_ranking
    from recommendations.evaluation import load_release
    from recommendations.recommender import DEFAULT_HYPERPARAMETERS, fit_recommender

    data = load_release(SMALL)
    rng = np.random.default_rng(SEED)
    liked = [set() for _ in range(data.n_users)]
    for u, i in zip(data.users[data.scores >= LIKED].tolist(), data.items[data.scores >= LIKED].tolist()):
        liked[u].add(i)
    rows = STRATEGY_ROWS + REFERENCE_ROWS + tuple(f"average without misery, floor {f}" for f in FLOORS)
    hits: dict[str, list[tuple[int, bool]]] = {name: [] for name in rows}  # (group size, hit)
    timings, fits, draws = {"group": [], "member": []}, 0, []
    hp = {**DEFAULT_HYPERPARAMETERS, "threads": 1}
    bar = tqdm(total=GROUPS, desc="groups")
    while len(hits["popularity"]) < GROUPS:
        batch = draw_batch(liked, rng, GROUPS - len(hits["popularity"]))
        if not batch:
            raise RuntimeError("no group of users with a film they all liked could be drawn")
        draws.append(len(batch))
        held = np.zeros(len(data.users), bool)
        for members, film in batch:
            held |= np.isin(data.users, members) & (data.items == film)
        train = data.subset(~held)
        model = fit_recommender(train, hp)
        fits += 1
        rated = sp.csr_matrix((train.scores, (train.users, train.items)), shape=(train.n_users, train.n_items))
        rated.sort_indices()

        def taste(u):
            row = rated[u]
            return group_ranking.MemberTaste(str(u), model.user_keys[u], model.user_vectors[u],
                                             row.indices.astype(np.int64), row.data.astype(np.float32))

        for members, film in batch:
            tastes = [taste(u) for u in members]
            pool, stars, served = group_ranking.score_candidates(model, tastes)
            top = {}
            for strategy in STRATEGY_ROWS:
                top[strategy] = pool[group_ranking.order(stars, served, strategy)[:K]]
            for floor in FLOORS:
                top[f"average without misery, floor {floor}"] = pool[
                    group_ranking.order(stars, served, "average_without_misery", floor)[:K]]
            top["average of predicted stars alone"] = pool[np.argsort(-stars.mean(axis=0), kind="stable")[:K]]
            excluded = group_ranking.excluded_items(model, tastes)
            average = group_ranking.served_scores(model, tastes).mean(axis=0)
            top["average of served scores"] = engine.top_k(np.where(excluded, -np.inf, average), K)
            top["popularity"] = engine.top_k(np.where(excluded, -np.inf, model.popularity.astype(np.float64)), K)
            for name in rows:
                hits[name].append((len(members), film in set(top[name].tolist())))
            bar.update(1)
            if len(members) == 4 and len(timings["group"]) < TIMING_REPEATS:
                started = time.perf_counter()
                group_ranking.rank_for_group(model, tastes, n=20)
                timings["group"].append(time.perf_counter() - started)
                started = time.perf_counter()
                own = model.blended_scores(tastes[0].vector, tastes[0].items, tastes[0].scores)
                engine.top_k(np.where(excluded, -np.inf, own), 20)
                model.predicted_stars(tastes[0].key, np.arange(20), tastes[0].items, tastes[0].scores)
                timings["member"].append(time.perf_counter() - started)
    bar.close()

    result = {"dataset": str(SMALL), "groups": len(hits["popularity"]), "seed": SEED, "fits": fits,
              "groups_per_fit": draws, "k": K, "rows": {}}
    print(f"\n{result['groups']} groups of 2–4 users from {SMALL.name} (seed {SEED}), {fits} fits "
          f"({', '.join(map(str, draws))} groups each); hit = the held-out film in the group's top {K}.")
    print(f"{'ranking':<36} {'all groups [95% CI]':>24} " + " ".join(f"{f'size {s}':>18}" for s in SIZES))
    for name in rows:
        outcomes = hits[name]
        entry = {}
        for label, selected in [("all", outcomes)] + [(str(s), [o for o in outcomes if o[0] == s]) for s in SIZES]:
            n, k = len(selected), sum(hit for _, hit in selected)
            low, high = wilson(k, n) if n else (0.0, 0.0)
            entry[label] = {"groups": n, "hits": k, "hit_rate": k / n if n else 0.0, "ci95": [low, high]}
        result["rows"][name] = entry
        cells = [f"{e['hit_rate']:.3f} [{e['ci95'][0]:.3f}, {e['ci95'][1]:.3f}]" for e in entry.values()]
        if name == REFERENCE_ROWS[0] or name.endswith(f"floor {FLOORS[0]}"):
            print("references:" if name == REFERENCE_ROWS[0] else "the default strategy's floor:")
        print(f"{name:<36} {cells[0]:>24} " + " ".join(f"{c.split(' [')[0]:>7} (n={entry[str(s)]['groups']:>3})    "
                                                          for c, s in zip(cells[1:], SIZES)))
    group_ms, member_ms = 1000 * np.median(timings["group"]), 1000 * np.median(timings["member"])
    result["timing_ms"] = {"group_of_4": group_ms, "one_member": member_ms}
    print(f"\nOne group list (4 members, 20 films, median of {len(timings['group'])}): {group_ms:.1f} ms; "
          f"one member's own top-20 with predicted stars: {member_ms:.1f} ms; ratio {group_ms / member_ms:.1f}x")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "groups.json").write_text(json.dumps(result, indent=2))
    plot(result, OUT / "groups_hit_rate.png")
    print(f"Figures: {OUT / 'groups.json'}; plot: {OUT / 'groups_hit_rate.png'}")


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name in result["rows"] if "floor" not in name]
    labels = ["all"] + [str(s) for s in SIZES]
    fig, ax = plt.subplots(figsize=(9, 5))
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        rates = np.array([result["rows"][name][lb]["hit_rate"] for lb in labels])
        low = np.array([result["rows"][name][lb]["ci95"][0] for lb in labels])
        high = np.array([result["rows"][name][lb]["ci95"][1] for lb in labels])
        ax.bar(np.arange(len(labels)) + j * width, rates, width, yerr=[rates - low, high - rates], capsize=3,
               label=name, hatch="//" if name in REFERENCE_ROWS else None, edgecolor="white")
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2,
                  [f"all groups (n={result['groups']})"] + [f"{s} members (n={result['rows'][names[0]][str(s)]['groups']})"
                                                           for s in SIZES])
    ax.set_ylabel(f"hit rate@{result['k']} (95% Wilson interval)")
    ax.set_title(f"Watch together, leave-one-out on {Path(result['dataset']).name}: "
                 f"a film every member rated ≥ 4 in the group's top {result['k']}")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
