"""Pending refreshes (a refresh lost with Redis is sent again) and the sweep that re-sends them."""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

SWEEP = "Re-send recommendation refreshes lost during a Redis outage"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_thirty_seconds, _ = IntervalSchedule.objects.get_or_create(every=30, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=SWEEP,
        defaults={
            "task": "recommendations.resend_lost_refreshes",
            "interval": every_thirty_seconds,
            "description": "Sends again the per-user list refreshes that were never sent or never ran.",
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SWEEP).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('recommendations', '0005_watch_groups'),
        ('recommendations', '0003_periodic_refits'),
    ]

    operations = [
        migrations.CreateModel(
            name='PendingRefresh',
            fields=[
                ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to=settings.AUTH_USER_MODEL)),
                ('changed_at', models.DateTimeField(help_text="The user's latest change not yet in their cached list.")),
                ('sent_at', models.DateTimeField(blank=True, help_text='When a refresh task was last sent for it.', null=True)),
            ],
        ),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
