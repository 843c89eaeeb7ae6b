"""Production settings come from the environment and pass Django's deployment checklist."""
import os
import secrets
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def production_env(tmp_path, **overrides) -> dict:
    """The environment variables a production deployment sets (see the README)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "SECURE_", "DEBUG"))}
    env.update(
        DJANGO_SETTINGS_MODULE="movierec.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="movierec.example.com",
        CSRF_TRUSTED_ORIGINS="https://movierec.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'production.sqlite3'}",
        STATIC_ROOT=str(tmp_path / "static"),
        EMAIL_HOST="smtp.movierec.example.com",
    )
    env.update(overrides)
    return env


def manage(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_with_production_environment(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_settings_turn_on_https_cookies_and_hsts(tmp_path):
    code = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_HSTS_SECONDS >= 31536000, s.SECURE_PROXY_SSL_HEADER)"
    )
    result = manage(production_env(tmp_path), "shell", "-c", code)

    assert result.returncode == 0, result.stderr
    assert "False True True True True ('HTTP_X_FORWARDED_PROTO', 'https')" in result.stdout.splitlines()


def test_check_deploy_fails_when_https_is_switched_off(tmp_path):
    env = production_env(tmp_path, SECURE_SSL_REDIRECT="0", SESSION_COOKIE_SECURE="0")

    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode != 0
    assert "security.W008" in result.stderr + result.stdout
    assert "security.W012" in result.stderr + result.stdout


def test_check_deploy_warns_when_no_email_can_be_sent(tmp_path):
    env = production_env(tmp_path)
    del env["EMAIL_HOST"]

    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode != 0
    output = result.stderr + result.stdout
    assert "accounts.W001" in output
    assert "verification and password-reset links are only written to the log" in output
    assert "Set EMAIL_HOST" in output


def test_the_api_token_lifetime_comes_from_the_environment(tmp_path):
    code = "from knox.settings import knox_settings; print(knox_settings.TOKEN_TTL)"

    result = manage(production_env(tmp_path, API_TOKEN_TTL_DAYS="2"), "shell", "-c", code)

    assert result.returncode == 0, result.stderr
    assert "2 days, 0:00:00" in result.stdout.splitlines()


def test_the_site_refuses_to_run_in_production_on_the_development_secret_key(tmp_path):
    env = production_env(tmp_path)
    del env["SECRET_KEY"]

    result = manage(env, "check")

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
