"""Default schedule (editable by staff under Periodic tasks in admin): recompute the trending list."""
from django.db import migrations

TRENDING = "Refresh the trending list"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_quarter_hour, _ = IntervalSchedule.objects.get_or_create(every=15, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=TRENDING,
        defaults={
            "task": "recommendations.refresh_trending",
            "interval": every_quarter_hour,
            "description": "Recomputes which films are gaining attention (recommendations.trending); pages read the result.",
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TRENDING).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("recommendations", "0007_discovery_preference"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
