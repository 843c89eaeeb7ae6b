"""Default schedules (editable by staff under Periodic tasks in admin): a nightly refit and a
frequent check that refits sooner when enough new ratings arrived."""
from django.db import migrations

NIGHTLY = "Nightly model refit"
CHECK = "Refit when enough new ratings arrived"


def create_schedules(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")

    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="3", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.get_or_create(
        name=NIGHTLY,
        defaults={
            "task": "recommendations.refit_model",
            "crontab": nightly,
            "kwargs": '{"reason": "nightly"}',
            "description": "Fits a new model every night; published only if it beats popularity on the holdout.",
        },
    )
    every_ten_minutes, _ = IntervalSchedule.objects.get_or_create(every=10, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=CHECK,
        defaults={
            "task": "recommendations.maybe_refit",
            "interval": every_ten_minutes,
            "description": "Enqueues a refit when RECOMMENDER_REFIT_MIN_NEW_RATINGS ratings arrived since the last fit.",
        },
    )


def remove_schedules(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=[NIGHTLY, CHECK]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("recommendations", "0002_genre_preference_history_import"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
