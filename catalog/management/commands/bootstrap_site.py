"""First-run set-up used by `make run`: a catalogue (the demo, or with --data a MovieLens release and
its metadata), a staff account, and a first recommendation model (fitted now when tasks run in
process, else by the worker); then (--announce) the address and the staff account, printed once
the site answers."""
import os
import secrets
import time
import urllib.error
import urllib.request

from celery import current_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, CommandError, call_command

from catalog.importers.formats import ReleaseError
from catalog.importers.metadata import import_metadata
from catalog.management.commands.import_movielens import run_import
from catalog.models import Movie, Rating
from recommendations import pipeline
from recommendations.models import ModelVersion
from recommendations.tasks import request_refit

# Where --hold-credentials keeps a new staff account's password until --announce prints it.
CREDENTIALS_FILE = settings.BASE_DIR / ".cache" / "new-staff-account.txt"
ANNOUNCE_TIMEOUT_SECONDS = 300


class Command(BaseCommand):
    help = (
        "Without --data: load the demo catalogue if the catalogue is empty. With --data: import that MovieLens "
        "release (folder or .zip) and --metadata files if no MovieLens film is stored yet (a database holding the "
        "demo is refused). Then create a staff account if none exists, and make sure a model is coming: fitted "
        "now when tasks run in process, else enqueued for the Celery worker (the site serves popular films "
        "meanwhile). With --announce URL: wait until the site answers there, then print its address and the new "
        "staff account."
    )

    def add_arguments(self, parser):
        parser.add_argument("--data", help="A MovieLens release (folder or .zip) to serve instead of the demo")
        parser.add_argument("--metadata", nargs="*", default=[],
                            help="TMDB 5000 / IMDB 5000 CSV files, HetRec 2011 folder (with --data)")
        parser.add_argument("--no-fit", action="store_true", help="Do not fit or enqueue a model.")
        parser.add_argument("--hold-credentials", action="store_true",
                            help="Keep a new staff account's password for --announce instead of printing it now.")
        parser.add_argument("--announce", metavar="URL",
                            help="Only wait for the site at URL to answer, then print where it is and the held "
                                 "staff account.")

    def handle(self, *args, data, metadata, no_fit, **options):
        if options["announce"]:
            self._announce(options["announce"])
            return
        if metadata and not data:
            raise CommandError("--metadata enriches a MovieLens release: give it with --data.")
        imported = self._import_release(data, metadata) if data else False
        if not data and not Movie.objects.exists():
            self.stdout.write("The catalogue is empty: loading the demo catalogue (simulated ratings).")
            call_command("load_demo", stdout=self.stdout, stderr=self.stderr)
        self._ensure_staff_account(hold=options["hold_credentials"])
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
        if current_app.conf.task_always_eager:
            self.stdout.write("Fitting and publishing a recommendation model for this catalogue.")
            outcome = pipeline.refit_and_publish(progress=True)
            self.stdout.write(f"Model: {outcome['outcome']} {outcome.get('version', '')} {outcome.get('error', '')}")
        elif ModelVersion.objects.filter(status=ModelVersion.Status.TRAINING).exists():
            self.stdout.write("A recommendation model is being fitted by a worker.")
        elif request_refit(reason="first fit for this catalogue"):
            self.stdout.write("The worker fits a recommendation model for this catalogue; "
                              "visitors get popular films until it is published.")

    def _ensure_staff_account(self, *, hold: bool):
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
            notice = f"Staff account {email} (password from ADMIN_PASSWORD)."
        else:
            notice = f"Staff account {email} with password {password}  (shown once)"
        if hold:
            CREDENTIALS_FILE.parent.mkdir(parents=True, exist_ok=True)
            CREDENTIALS_FILE.touch(mode=0o600)
            CREDENTIALS_FILE.write_text(notice)
            self.stdout.write(f"Created staff account {email}: its password is printed once the site answers.")
        else:
            self.stdout.write(self.style.WARNING(f"Created {notice[0].lower()}{notice[1:]}"))

    def _announce(self, url: str):
        started = time.monotonic()
        health = url.rstrip("/") + "/healthz"
        while not _answers(health):
            if time.monotonic() - started > ANNOUNCE_TIMEOUT_SECONDS:
                raise CommandError(f"The site did not answer at {health} within {ANNOUNCE_TIMEOUT_SECONDS} s.")
            time.sleep(0.3)
        answered = time.monotonic() - started
        # Printed after the worker's start-up banner, so nothing scrolls it away.
        while not current_app.conf.task_always_eager and not _worker_answers():
            if time.monotonic() - started > ANNOUNCE_TIMEOUT_SECONDS:
                self.stderr.write("No Celery worker answered: refits and list refreshes wait until one runs.")
                break
        lines = [f"movierec is serving at {url} (it answered {answered:.1f} s after starting). Ctrl-C stops it."]
        if not ModelVersion.objects.filter(is_current=True).exists():
            lines.append("The first recommendation model is being fitted; visitors get popular films until then.")
        if CREDENTIALS_FILE.exists():
            lines.append(CREDENTIALS_FILE.read_text())
            CREDENTIALS_FILE.unlink()
        rule = "=" * max(len(line) for line in lines)
        self.stdout.write(self.style.SUCCESS("\n".join([rule, *lines, rule])))


def _worker_answers() -> bool:
    try:
        return bool(current_app.control.ping(timeout=1.0))
    except Exception:  # broker not reachable yet: the worker is not up either
        time.sleep(1)
        return False


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
