from django.core.management.base import BaseCommand

from recommendations.pipeline import publish_and_warm
from recommendations.services import fit_model


class Command(BaseCommand):
    help = (
        "Fit the recommender on the database, record a ModelVersion and (unless --no-publish) publish it "
        "the way refits do: every active user's list warmed, then the cache's version pointer switched."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-publish", action="store_true", help="Leave the new version READY, not current")
        parser.add_argument("--epochs", type=int, default=None)

    def handle(self, *args, no_publish, epochs, **options):
        version = fit_model(hyperparameters={"epochs": epochs} if epochs else None, progress=True)
        warmed = None if no_publish else publish_and_warm(version, progress=True)
        self.stdout.write(self.style.SUCCESS(
            f"Model v{version.pk}: {version.n_users} users, {version.n_items} movies, {version.n_interactions} ratings, "
            f"{version.train_seconds:.1f}s; metrics {version.metrics}; "
            f"{'ready' if no_publish else f'published, {warmed} lists warmed'}"))
