from django.core.management.base import BaseCommand

from recommendations.services import fit_model, publish_model


class Command(BaseCommand):
    help = "Fit the recommender on the database, record a ModelVersion and (unless --no-publish) publish it."

    def add_arguments(self, parser):
        parser.add_argument("--no-publish", action="store_true", help="Leave the new version READY, not current")
        parser.add_argument("--epochs", type=int, default=None)

    def handle(self, *args, no_publish, epochs, **options):
        version = fit_model(hyperparameters={"epochs": epochs} if epochs else None, progress=True)
        if not no_publish:
            publish_model(version)
        self.stdout.write(self.style.SUCCESS(
            f"Model v{version.pk}: {version.n_users} users, {version.n_items} movies, {version.n_interactions} ratings, "
            f"{version.train_seconds:.1f}s; metrics {version.metrics}; {'ready' if no_publish else 'published'}"))
