"""First-run set-up used by `make run`: a catalogue (the demo, or with --data a MovieLens release and
its metadata), a staff account, and a recommendation model so the very first visitor gets personal
recommendations."""
import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, CommandError, call_command

from catalog.importers.formats import ReleaseError
from catalog.importers.metadata import import_metadata
from catalog.management.commands.import_movielens import run_import
from catalog.models import Movie, Rating
from recommendations import pipeline
from recommendations.models import ModelVersion


class Command(BaseCommand):
    help = (
        "Without --data: load the demo catalogue if the catalogue is empty. With --data: import that MovieLens "
        "release (folder or .zip) and --metadata files if no MovieLens film is stored yet (a database holding the "
        "demo is refused), then fit and publish a model. Then create a staff account if none exists, and fit a "
        "first model if none serves yet."
    )

    def add_arguments(self, parser):
        parser.add_argument("--data", help="A MovieLens release (folder or .zip) to serve instead of the demo")
        parser.add_argument("--metadata", nargs="*", default=[],
                            help="TMDB 5000 / IMDB 5000 CSV files, HetRec 2011 folder (with --data)")
        parser.add_argument("--no-fit", action="store_true", help="Do not fit a model.")

    def handle(self, *args, data, metadata, no_fit, **options):
        if metadata and not data:
            raise CommandError("--metadata enriches a MovieLens release: give it with --data.")
        imported = self._import_release(data, metadata) if data else False
        if not data and not Movie.objects.exists():
            self.stdout.write("The catalogue is empty: loading the demo catalogue (simulated ratings).")
            call_command("load_demo", stdout=self.stdout, stderr=self.stderr)
        self._ensure_staff_account()
        if not no_fit:
            self._ensure_model(refit=imported)

    def _import_release(self, data, metadata) -> bool:
        """Import the release and its metadata into a catalogue without MovieLens films; True if it did."""
        stored = Movie.objects.exclude(movielens_id=None).count()
        if stored:
            self.stdout.write(f"The catalogue already holds {stored:,} MovieLens films: not importing {data} again "
                              "(`manage.py import_movielens` updates it).")
            return False
        self.stdout.write(f"Importing the MovieLens release {data}.")
        for line in run_import(data).lines():
            self.stdout.write(line)
        if metadata:
            self.stdout.write(f"Importing metadata: {', '.join(metadata)}.")
            try:
                report = import_metadata(metadata)
            except ReleaseError as exc:
                raise CommandError(f"The release is imported, its metadata is not. {exc}") from exc
            for line in report.lines():
                self.stdout.write(line)
        return True

    def _ensure_model(self, *, refit: bool):
        if not Rating.objects.exists():
            return
        if not refit and ModelVersion.objects.filter(is_current=True).exists():
            return
        self.stdout.write("Fitting and publishing a recommendation model for this catalogue.")
        outcome = pipeline.refit_and_publish(progress=True)
        self.stdout.write(f"Model: {outcome['outcome']} {outcome.get('version', '')} {outcome.get('error', '')}")

    def _ensure_staff_account(self):
        User = get_user_model()
        if User.objects.filter(is_staff=True).exists():
            return
        email = os.environ.get("ADMIN_EMAIL", "admin@movierec.local")
        password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user = User.objects.create_superuser(email=email, password=password)
        from allauth.account.models import EmailAddress

        EmailAddress.objects.update_or_create(
            user=user, email=email, defaults={"verified": True, "primary": True}
        )
        if os.environ.get("ADMIN_PASSWORD"):
            self.stdout.write(self.style.SUCCESS(f"Created staff account {email} (password from ADMIN_PASSWORD)."))
        else:
            self.stdout.write(
                self.style.WARNING(f"Created staff account {email} with password {password}  (shown once)")
            )
