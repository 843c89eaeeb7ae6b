"""`python manage.py remove_demo`: take the demo catalogue out before real data moves in."""
from django.core.management import BaseCommand

from catalog.demo.loader import demo_footprint, remove_demo_catalogue


class Command(BaseCommand):
    help = (
        "Remove the demo catalogue: simulated users, their ratings, tags and lists, the films only the demo "
        "brought and the people credited only in them. Nothing else (site users, real data, genres) is touched."
    )

    def handle(self, *args, **options):
        if not demo_footprint():
            self.stdout.write("This database holds no demo catalogue: nothing to remove.")
            return
        self.stdout.write(self.style.SUCCESS(str(remove_demo_catalogue())))
