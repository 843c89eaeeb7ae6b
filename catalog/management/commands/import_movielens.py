"""`manage.py import_movielens PATH`: import a MovieLens release (folder or the publisher's .zip)."""
from django.core.management import BaseCommand, CommandError
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor

from catalog.importers.formats import ReleaseError
from catalog.importers.movielens import DemoCatalogueError, import_movielens


class Command(BaseCommand):
    help = (
        "Import a MovieLens release (ml-latest(-small), ml-20m/25m/32m, ml-100k, ml-1m, ml-10m) from a folder "
        "or .zip: movies, genres, users (imported accounts that cannot sign in), ratings and tags. "
        "Validates every file before writing; safe to re-run."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="Folder or .zip of a MovieLens release")
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bars")
        parser.add_argument("--remove-demo", action="store_true",
                            help="Remove the demo catalogue (simulated users, their ratings, demo-only films) first")

    def handle(self, *args, path, no_progress, remove_demo, verbosity, **options):
        summary = run_import(path, progress=not no_progress and verbosity > 0, remove_demo=remove_demo)
        for line in summary.lines():
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS("Import complete."))


def require_migrated_database() -> None:
    """CommandError unless every migration is applied (a new DATABASE_URL has no tables yet)."""
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise CommandError(
            "The database is not migrated (a new DATABASE_URL has no tables yet): run "
            "`python manage.py migrate` with the same DATABASE_URL first."
        )


def run_import(path, *, progress=True, remove_demo=False):
    """import_movielens() with its errors turned into CommandError (shared with fetch_movielens)."""
    require_migrated_database()
    try:
        return import_movielens(path, progress=progress, remove_demo=remove_demo)
    except DemoCatalogueError as exc:
        raise CommandError(f"Nothing was imported. {exc}") from exc
    except ReleaseError as exc:
        raise CommandError(f"Nothing was imported. {exc}") from exc
    except DatabaseError as exc:  # e.g. one user rating a movie twice in separate blocks of the file
        raise CommandError(f"Nothing was imported: the database rejected the release ({exc}).") from exc
