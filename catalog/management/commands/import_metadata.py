"""`manage.py import_metadata PATH [PATH ...]`: enrich the catalogue from TMDB 5000, IMDB 5000, HetRec 2011."""
from django.core.management import BaseCommand, CommandError

from catalog.importers.formats import ReleaseError
from catalog.importers.metadata import import_metadata
from catalog.management.commands.import_movielens import require_migrated_database


class Command(BaseCommand):
    help = (
        "Add synopses, keywords, runtimes, release dates, directors and actors to movies already imported, "
        "from the TMDB 5000 movies CSV, the IMDB 5000 CSV and/or the HetRec 2011 folder (detected by columns), "
        "joined through the IMDb/TMDB ids of links.csv. Also repairs people and credits an earlier import got wrong."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", help="Metadata files or folders")

    def handle(self, *args, paths, **options):
        require_migrated_database()
        try:
            report = import_metadata(paths)
        except ReleaseError as exc:
            raise CommandError(f"Metadata not imported. {exc}") from exc
        for line in report.lines():
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS("Metadata import complete."))
