"""`manage.py generate_ratings --users N --movies M --ratings R --out PATH [--seed S]`."""
from django.core.management import BaseCommand, CommandError

from catalog.importers.synthetic import generate_release


class Command(BaseCommand):
    help = (
        "Write a synthetic MovieLens CSV release (movies.csv, links.csv, ratings.csv, tags.csv) with power-law "
        "popularity and user activity, half-star scores and timestamps, streaming (bounded memory). For benchmarks."
    )

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, required=True)
        parser.add_argument("--movies", type=int, required=True)
        parser.add_argument("--ratings", type=int, required=True)
        parser.add_argument("--out", required=True, help="Folder to write the release into")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, users, movies, ratings, out, seed, no_progress, verbosity, **options):
        try:
            result = generate_release(
                out, users=users, movies=movies, ratings=ratings, seed=seed, progress=not no_progress and verbosity > 0
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {result.ratings:,} ratings by {result.users:,} users on {result.movies:,} movies "
                f"and {result.tags:,} tags to {result.path}"
            )
        )
