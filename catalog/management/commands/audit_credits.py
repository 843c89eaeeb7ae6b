"""`manage.py audit_credits PATH [PATH ...]`: check stored directors and people against metadata files."""
from django.core.management import BaseCommand, CommandError

from catalog.importers.formats import ReleaseError
from catalog.importers.metadata import audit_credits


class Command(BaseCommand):
    help = (
        "Report films credited with a director none of the given metadata files (TMDB 5000, IMDB 5000, HetRec "
        "2011, joined by IMDb/TMDB id) credits to them, names holding U+FFFD and duplicate people. Writes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", help="Metadata files or folders")

    def handle(self, *args, paths, **options):
        try:
            audit = audit_credits(paths)
        except ReleaseError as exc:
            raise CommandError(str(exc)) from exc
        for line in audit.lines():
            self.stdout.write(line)
