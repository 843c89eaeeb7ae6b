"""API tokens move from DRF's authtoken (one plain-text token per user, never expiring) to knox.

Each existing token keeps working under knox, stored hashed, until one token lifetime
(API_TOKEN_TTL_DAYS) from this migration; then DRF's table is dropped. On a database that
never had DRF's tokens this does nothing.
"""
from django.db import migrations
from django.utils import timezone

DRF_TABLE = "authtoken_token"


def move_drf_tokens_to_knox(apps, schema_editor):
    from knox.crypto import hash_token
    from knox.settings import CONSTANTS, knox_settings

    connection = schema_editor.connection
    if DRF_TABLE not in connection.introspection.table_names():
        return
    AuthToken = apps.get_model("knox", "AuthToken")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {schema_editor.quote_name('key')}, user_id FROM {DRF_TABLE}")
        rows = cursor.fetchall()
    expiry = timezone.now() + knox_settings.TOKEN_TTL
    AuthToken.objects.bulk_create(
        AuthToken(digest=hash_token(key), token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH], user_id=user_id, expiry=expiry)
        for key, user_id in rows
    )
    schema_editor.execute(schema_editor.sql_delete_table % {"table": schema_editor.quote_name(DRF_TABLE)})


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [migrations.RunPython(move_drf_tokens_to_knox, migrations.RunPython.noop)]
