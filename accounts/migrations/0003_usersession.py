"""Sessions move to accounts.UserSession, which records the signed-in user (SESSION_ENGINE "accounts.sessions").

Live sessions are copied from Django's table with their user, so nobody is signed out by the
move; Django's table is then emptied (its rows named users only inside their data).
"""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone


def move_sessions(apps, schema_editor):
    from django.contrib.auth import SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    OldSession = apps.get_model("sessions", "Session")
    UserSession = apps.get_model("accounts", "UserSession")
    user_ids = set(apps.get_model("accounts", "User").objects.values_list("pk", flat=True))
    decoder = SessionStore()
    moved = []
    for old in OldSession.objects.filter(expire_date__gt=timezone.now()).iterator():
        user_id = decoder.decode(old.session_data).get(SESSION_KEY)
        user_id = int(user_id) if user_id is not None and str(user_id).isdigit() else None
        moved.append(UserSession(session_key=old.session_key, session_data=old.session_data,
                                 expire_date=old.expire_date, user_id=user_id if user_id in user_ids else None))
    UserSession.objects.bulk_create(moved, batch_size=1000)
    OldSession.objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_drf_tokens_to_knox'),
        ('sessions', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='UserSession',
            fields=[
                ('session_key', models.CharField(max_length=40, primary_key=True, serialize=False, verbose_name='session key')),
                ('session_data', models.TextField(verbose_name='session data')),
                ('expire_date', models.DateTimeField(db_index=True, verbose_name='expire date')),
                ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'session',
                'verbose_name_plural': 'sessions',
                'abstract': False,
            },
        ),
        migrations.RunPython(move_sessions, migrations.RunPython.noop),
    ]
