"""First-run set-up used by `make run`: demo catalogue into an empty database, a staff account,
and a first recommendation model so the very first visitor gets personal recommendations."""
import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, call_command

from catalog.models import Movie, Rating
from recommendations import pipeline
from recommendations.models import ModelVersion


class Command(BaseCommand):
    help = (
        "Load the demo catalogue if the catalogue is empty, create a staff account if none exists, "
        "and fit a first recommendation model if none serves yet."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-fit", action="store_true", help="Do not fit a first model.")

    def handle(self, *args, **options):
        if not Movie.objects.exists():
            self.stdout.write("The catalogue is empty: loading the demo catalogue (simulated ratings).")
            call_command("load_demo", stdout=self.stdout, stderr=self.stderr)
        self._ensure_staff_account()
        if not options["no_fit"]:
            self._ensure_model()

    def _ensure_model(self):
        if ModelVersion.objects.filter(is_current=True).exists() or not Rating.objects.exists():
            return
        self.stdout.write("No recommendation model serves yet: fitting the first one.")
        outcome = pipeline.refit_and_publish(progress=True)
        self.stdout.write(f"First model: {outcome['outcome']} {outcome.get('version', '')} {outcome.get('error', '')}")

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
