"""The session engine (SESSION_ENGINE = "accounts.sessions"): database sessions that record their user.

Django's documented way to extend the database engine: the same store, with the signed-in
user's id copied into accounts.UserSession.user on every save.
"""
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore


class SessionStore(DatabaseSessionStore):
    @classmethod
    def get_model_class(cls):
        from accounts.models import UserSession

        return UserSession

    def create_model_instance(self, data):
        instance = super().create_model_instance(data)
        user_id = data.get(SESSION_KEY)
        instance.user_id = int(user_id) if user_id is not None and str(user_id).isdigit() else None
        return instance
