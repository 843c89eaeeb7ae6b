"""`manage.py import_movielens PATH`: import a MovieLens release (folder or the publisher's .zip)."""
from django.core.management import BaseCommand, CommandError
from django.db import DatabaseError

from catalog.importers.formats import ReleaseError
from catalog.importers.movielens import import_movielens


class Command(BaseCommand):
    help = (
        "Import a MovieLens release (ml-latest(-small), ml-20m/25m/32m, ml-100k, ml-1m, ml-10m) from a folder "
        "or .zip: movies, genres, users (imported accounts that cannot sign in), ratings and tags. "
        "Validates every file before writing; safe to re-run."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="Folder or .zip of a MovieLens release")
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bars")

    def handle(self, *args, path, no_progress, verbosity, **options):
        summary = run_import(path, progress=not no_progress and verbosity > 0)
        for line in summary.lines():
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS("Import complete."))


def run_import(path, *, progress=True):
    """import_movielens() with its errors turned into CommandError (shared with fetch_movielens)."""
    try:
        return import_movielens(path, progress=progress)
    except ReleaseError as exc:
        raise CommandError(f"Nothing was imported. {exc}") from exc
    except DatabaseError as exc:  # e.g. one user rating a movie twice in separate blocks of the file
        raise CommandError(f"Nothing was imported: the database rejected the release ({exc}).") from exc
