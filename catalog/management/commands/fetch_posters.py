"""manage.py fetch_posters: store TMDB posters for the films that have none (resumable)."""
from django.core.management.base import BaseCommand, CommandError

from catalog.posters import fetch_posters
from catalog.tmdb import TMDBAuthError


class Command(BaseCommand):
    help = (
        "Fetch posters from TMDB (TMDB_API_KEY) by TMDB id, else IMDb id, and store them. Films that have a "
        "poster, or that TMDB had none for on an earlier run, are skipped: run it again to resume."
    )

    def add_arguments(self, parser):
        parser.add_argument("--movie", type=int, action="append", dest="movie_ids", metavar="ID",
                            help="only this movie id (repeat for several)")
        parser.add_argument("--retry-missing", action="store_true",
                            help="ask again for films TMDB had no poster for")
        parser.add_argument("--force", action="store_true", help="fetch again even films that have a poster")

    def handle(self, *args, movie_ids=None, retry_missing=False, force=False, **options):
        try:
            run = fetch_posters(movie_ids, force=force, retry_missing=retry_missing, progress=options["verbosity"] > 0)
        except TMDBAuthError as error:
            raise CommandError(str(error))
        self.stdout.write(run.summary())
