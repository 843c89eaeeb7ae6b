"""Run a simulated A/B experiment on the demo catalogue (recommendations.simulated_experiment)."""
from django.core.management.base import BaseCommand, CommandError

from recommendations import experiments, impression_stats, pipeline, services
from recommendations.models import ModelVersion
from recommendations.rerank import DISCOVERY_LEVELS

# Arm B's candidate when no versions are given: LightFM-heavy, no neural model in the ranking.
CANDIDATE = {"blend_lightfm": 0.8, "blend_neural": 0.0}


class Command(BaseCommand):
    help = ("Serve the demo's simulated users two model versions in an A/B experiment for some days; "
            "they open and rate films following their simulated tastes. Writes ratings: use a copy of the demo database.")

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=7)
        parser.add_argument("--users", type=int, default=200)
        parser.add_argument("--seed", type=int, default=16)
        parser.add_argument("--a-version", type=int, help="arm A's version (default: fit one with the default settings)")
        parser.add_argument("--b-version", type=int, help=f"arm B's version (default: fit one with {CANDIDATE})")
        parser.add_argument("--b-share", type=float, default=0.5)
        parser.add_argument("--b-discovery", type=int, choices=range(5),
                            help="compare dial positions instead: both arms serve the current version, arm B "
                                 "at this position for users who never moved the dial (arm A as usual)")

    def handle(self, *args, days, users, seed, a_version, b_version, b_share, b_discovery, **options):
        from recommendations.simulated_experiment import simulate_visits

        if experiments.running_experiment() is not None:
            raise CommandError("An experiment is running already: end it on the model page first.")
        if b_discovery is not None:
            if not ModelVersion.objects.filter(is_current=True).exists():
                pipeline.publish_and_warm(self._fit("both arms", None))
            experiment = experiments.start_experiment(
                name=f"dial as usual against {DISCOVERY_LEVELS[b_discovery]} (simulated users)",
                b_discovery=b_discovery, b_share=b_share)
        else:
            a = ModelVersion.objects.get(pk=a_version) if a_version else self._fit("arm A", None)
            b = ModelVersion.objects.get(pk=b_version) if b_version else self._fit("arm B", CANDIDATE)
            if not a.is_current:
                pipeline.publish_and_warm(a)
            experiment = experiments.start_experiment(name=f"v{a.pk} against v{b.pk} (simulated users)",
                                                      a_version=a, b_version=b, b_share=b_share)
        experiments.expire_running_experiment()
        totals = simulate_visits(days=days, users=users, seed=seed, log=self.stdout.write)
        self.stdout.write(f"{totals}")
        report = impression_stats.experiment_report(experiment)
        for arm, figures in report.arms.items():
            self.stdout.write(f"arm {arm}: {report.users[arm]} users, {figures.impressions} impressions, "
                              f"CTR {figures.ctr:.4f} {impression_stats.wilson(figures.opened, figures.impressions)}, "
                              f"hit rate {figures.hit_rate:.4f} {impression_stats.wilson(figures.rated, figures.impressions)}, "
                              f"mean stars {figures.mean_stars}")
        for comparison in report.comparisons:
            self.stdout.write(f"{comparison.metric}: {comparison.verdict} (z = {comparison.z})")

    def _fit(self, label, hyperparameters):
        self.stdout.write(f"Fitting {label} ({hyperparameters or 'default settings'})...")
        version = services.fit_model(hyperparameters=hyperparameters, progress=False)
        self.stdout.write(f"  v{version.pk}: holdout nDCG@10 {pipeline.holdout_scores(version)[0]}")
        return version
