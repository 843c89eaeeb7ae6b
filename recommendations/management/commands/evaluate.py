from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from recommendations.evaluation import PROTOCOLS, evaluate


class Command(BaseCommand):
    help = (
        "Evaluate every model (popularity, item/user-kNN, PureSVD, content, EASE, LightFM CF and hybrid, served blend) "
        "on a MovieLens release in its native layout; writes results.json, report.md and PNG plots to --out."
    )

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, help="Folder of a MovieLens release (ml-latest(-small), ml-100k, ml-1m, ml-10m)")
        parser.add_argument("--protocol", required=True, choices=PROTOCOLS)
        parser.add_argument("--out", required=True, help="Output folder (created if missing)")
        parser.add_argument("--metadata", nargs="+", default=[], metavar="PATH",
                            help="TMDB 5000 CSV, IMDB 5000 CSV and/or HetRec 2011 folder: synopses, keywords, "
                                 "directors and actors for the movies, joined through the release's links")
        parser.add_argument("--epochs", type=int, default=None, help="LightFM epochs (default from the engine)")
        parser.add_argument("--no-tune", action="store_true", help="Skip the validation search for blend weights")
        parser.add_argument("--no-cv", action="store_true", help="Skip the 5-fold CV of the predicted stars")

    def handle(self, *args, data, protocol, out, metadata, epochs, no_tune, no_cv, **options):
        from catalog.importers.formats import ReleaseError

        if not Path(data).is_dir():
            raise CommandError(f"{data}: not a folder")
        hp = {"epochs": epochs} if epochs else None
        try:
            result = evaluate(data, protocol, out, metadata=metadata, hyperparameters=hp, progress=True,
                              tune_on_validation=not no_tune, cross_validate=not no_cv)
        except ReleaseError as error:
            raise CommandError(str(error)) from error
        self.stdout.write((Path(out) / "report.md").read_text())
        best = max(result["models"], key=lambda n: result["models"][n]["ndcg@10"])
        self.stdout.write(self.style.SUCCESS(f"Wrote {out}/results.json, report.md and plots; best nDCG@10: {best}"))
