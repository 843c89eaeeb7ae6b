"""`python manage.py load_demo`: the shipped demo catalogue with simulated users and ratings."""
from django.core.management import BaseCommand, CommandError

from catalog.demo.catalogue import DemoDataError
from catalog.demo.loader import load_demo_catalogue
from catalog.demo.simulation import DEFAULT_SEED, DEFAULT_USERS


class Command(BaseCommand):
    help = (
        "Load the demo catalogue: real films (facts written in our own words) with simulated users and "
        "simulated ratings. Loading again adds only what is missing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=DEFAULT_USERS, help="Number of simulated users.")
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="Seed of the rating simulation.")
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bars.")

    def handle(self, *args, users, seed, no_progress, **options):
        if users < 1:
            raise CommandError("--users must be at least 1")
        try:
            summary = load_demo_catalogue(n_users=users, seed=seed, progress=not no_progress)
        except DemoDataError as error:
            raise CommandError(f"Demo data file error: {error}") from error
        self.stdout.write(self.style.SUCCESS(str(summary)))
