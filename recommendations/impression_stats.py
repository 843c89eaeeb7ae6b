"""Selectors over the impressions log: what the staff model page shows.

Raw impressions (recent) and the daily totals of pruned ones (ImpressionDaily) are read together,
so figures do not change when old impressions are pruned.

- click-through (CTR): impressions whose film page was opened within the outcome window / impressions;
- hit rate ("rated after shown"): impressions whose film was rated within the window / impressions;
- mean stars: the mean of those ratings.

Experiment arms get 95% Wilson intervals for both proportions and a two-proportion z-test
(pooled). Impressions of one user are not independent (a user who clicks a lot clicks in both
of two page views), so the test is optimistic when users see many pages; it says so on the page.
"""
from __future__ import annotations

import io
import math
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Sum
from scipy.stats import binomtest, norm

from recommendations.impressions import daily_counts
from recommendations.models import Experiment, Impression, ImpressionDaily

ALPHA = 0.05
COUNTS = ("impressions", "opened", "watchlisted", "rated", "hidden")


def _groups(**filters) -> list[dict]:
    """Daily groups (day, row, model_version, experiment, arm + counts) of raw and pruned impressions."""
    raw = daily_counts(Impression.objects.filter(**filters))
    old = list(ImpressionDaily.objects.filter(**filters).values("day", "row", "model_version", "experiment", "arm",
                                                                *COUNTS, "stars_sum"))
    return raw + old


@dataclass
class Figures:
    impressions: int = 0
    opened: int = 0
    watchlisted: int = 0
    rated: int = 0
    hidden: int = 0
    stars_sum: float = 0.0

    def add(self, group: dict) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + group[name])
        self.stars_sum += group["stars_sum"] or 0.0

    @property
    def ctr(self) -> float | None:
        return self.opened / self.impressions if self.impressions else None

    @property
    def hit_rate(self) -> float | None:
        return self.rated / self.impressions if self.impressions else None

    @property
    def mean_stars(self) -> float | None:
        return self.stars_sum / self.rated if self.rated else None


def by_row_and_version() -> list[tuple[str, int | None, Figures]]:
    """[(row, model version id, figures)], by version (newest first) then row."""
    totals: dict[tuple, Figures] = defaultdict(Figures)
    for group in _groups():
        totals[(group["row"], group["model_version"])].add(group)
    return sorted(((row, version, figures) for (row, version), figures in totals.items()),
                  key=lambda entry: (-(entry[1] or 0), entry[0]))


def by_day_and_version() -> dict[int | None, list[tuple]]:
    """{model version id: [(day, figures)] in day order}: every row together."""
    totals: dict[tuple, Figures] = defaultdict(Figures)
    for group in _groups():
        totals[(group["model_version"], group["day"])].add(group)
    series: dict[int | None, list[tuple]] = defaultdict(list)
    for (version, day), figures in sorted(totals.items(), key=lambda item: (item[0][0] or 0, item[0][1])):
        series[version].append((day, figures))
    return dict(series)


def wilson(successes: int, trials: int) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion (None without trials)."""
    if not trials:
        return None
    interval = binomtest(successes, trials).proportion_ci(confidence_level=1 - ALPHA, method="wilson")
    return float(interval.low), float(interval.high)


def two_proportion_z(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> tuple[float, float] | None:
    """(z, two-sided p) of the pooled two-proportion z-test of B against A; None when undefined."""
    if not trials_a or not trials_b:
        return None
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    if spread == 0:
        return None
    z = (successes_b / trials_b - successes_a / trials_a) / spread
    return z, float(2 * norm.sf(abs(z)))


@dataclass
class Comparison:
    metric: str
    a: float | None
    a_interval: tuple | None
    b: float | None
    b_interval: tuple | None
    z: float | None
    p: float | None

    @property
    def significant(self) -> bool:
        return self.p is not None and self.p < ALPHA

    @property
    def verdict(self) -> str:
        if self.p is None:
            return "not enough data"
        if not self.significant:
            return f"no significant difference (p = {self.p:.3f})"
        better = "B" if self.z > 0 else "A"
        return f"arm {better} is higher, significant at 95% (p = {self.p:.4f})"


@dataclass
class ExperimentReport:
    experiment: Experiment
    arms: dict[str, Figures]
    users: dict[str, int]
    comparisons: list[Comparison]


def experiment_report(experiment: Experiment) -> ExperimentReport:
    """Each arm's figures, 95% intervals of CTR and hit rate, and the z-tests between the arms."""
    arms = {"A": Figures(), "B": Figures()}
    for group in _groups(experiment=experiment):
        if group["arm"] in arms:
            arms[group["arm"]].add(group)
    users = {arm: Impression.objects.filter(experiment=experiment, arm=arm).values("user_id").distinct().count()
             for arm in arms}
    comparisons = []
    for metric, field in (("click-through", "opened"), ("hit rate (rated after shown)", "rated")):
        a, b = arms["A"], arms["B"]
        test = two_proportion_z(getattr(a, field), a.impressions, getattr(b, field), b.impressions)
        comparisons.append(Comparison(
            metric, getattr(a, field) / a.impressions if a.impressions else None, wilson(getattr(a, field), a.impressions),
            getattr(b, field) / b.impressions if b.impressions else None, wilson(getattr(b, field), b.impressions),
            *(test or (None, None))))
    return ExperimentReport(experiment, arms, users, comparisons)


def total_impressions() -> int:
    return Impression.objects.count() + (ImpressionDaily.objects.aggregate(n=Sum("impressions"))["n"] or 0)


# ----------------------------------------------------------------------------- plots


def daily_plot_png() -> bytes:
    """Three panels by day, one line per model version: click-through, hit rate, mean stars given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = by_day_and_version()
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.4), dpi=100)
    panels = (("Click-through", lambda f: f.ctr), ("Hit rate (rated after shown)", lambda f: f.hit_rate),
              ("Mean stars given", lambda f: f.mean_stars))
    for axis, (title, value) in zip(axes, panels):
        for version, points in series.items():
            days = [day for day, figures in points if value(figures) is not None]
            values = [value(figures) for _, figures in points if value(figures) is not None]
            axis.plot(days, values, marker="o", markersize=3, label=f"v{version}" if version else "no model")
        axis.set_title(title, fontsize=10)
        axis.tick_params(axis="x", labelrotation=45, labelsize=7)
        axis.tick_params(axis="y", labelsize=8)
        axis.grid(alpha=0.3)
    axes[2].set_ylim(0.5, 5.0)
    if series:
        axes[0].legend(fontsize=8)
    figure.tight_layout()
    return _png(figure, plt)


def experiment_plot_png(report: ExperimentReport) -> bytes:
    """Each arm's click-through and hit rate with their 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(8, 3), dpi=100)
    for axis, comparison in zip(axes, report.comparisons):
        for x, (arm, value, interval) in enumerate((("A", comparison.a, comparison.a_interval),
                                                    ("B", comparison.b, comparison.b_interval))):
            if value is None:
                continue
            axis.bar(x, value, color="#4c72b0" if arm == "A" else "#dd8452", width=0.6)
            axis.errorbar(x, value, yerr=[[value - interval[0]], [interval[1] - value]], color="black", capsize=6)
        axis.set_xticks([0, 1], ["arm A", "arm B"])
        axis.set_title(f"{comparison.metric}\n{comparison.verdict}", fontsize=9)
        axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return _png(figure, plt)


def _png(figure, plt) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
