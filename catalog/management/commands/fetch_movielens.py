"""`manage.py fetch_movielens [--release small|25m|32m|100k|1m]`: download, verify, import."""
from django.conf import settings
from django.core.management import BaseCommand, CommandError

from catalog.importers.download import RELEASES, DownloadError, fetch_release
from catalog.management.commands.import_movielens import run_import


class Command(BaseCommand):
    help = "Download a MovieLens release from GroupLens into a cache folder, verify its MD5 checksum and import it."

    def add_arguments(self, parser):
        parser.add_argument("--release", default="small", choices=sorted(RELEASES), help="Which release (default: small)")
        parser.add_argument("--base-url", default=settings.MOVIELENS_BASE_URL, help="Where the <name>.zip files live")
        parser.add_argument("--cache-dir", default=settings.MOVIELENS_CACHE_DIR, help="Where downloads are kept")
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bars")

    def handle(self, *args, release, base_url, cache_dir, no_progress, verbosity, **options):
        progress = not no_progress and verbosity > 0
        try:
            archive = fetch_release(release, base_url=base_url, cache_dir=cache_dir, progress=progress)
        except DownloadError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Verified {archive}; importing it.")
        summary = run_import(archive, progress=progress)
        for line in summary.lines():
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS("Import complete."))
