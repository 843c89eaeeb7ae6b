"""REST endpoints of accounts: signing in for a token, signing out, profile, export, deletion.

Passwords are checked by allauth's adapter (the same check, with the same failed-login rate
limit, as the website's login form); profile changes, export and deletion go through
accounts.services / accounts.selectors, like the profile pages.
"""
from allauth.account.adapter import get_adapter
from allauth.account.utils import has_verified_email
from django.contrib.auth import logout
from django.contrib.auth.models import update_last_login
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.models import AuthToken as StoredToken
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import PermissionDenied, Throttled
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.forms import DeleteAccountForm
from accounts.serializers import (
    DataExportSerializer,
    DeleteAccountSerializer,
    ProfileSerializer,
    TokenRequestSerializer,
    TokenSerializer,
)
from movierec.api import AnonThrottle, LoginThrottle, UserThrottle

WRONG_CREDENTIALS = "Unable to sign in with this email address and password."


class AuthToken(APIView):
    """Sign in (get a new token) and sign out (revoke it)."""

    def get_permissions(self):
        if self.request.method == "DELETE":
            return [permissions.IsAuthenticated()]
        return [permissions.AllowAny()]

    def get_authenticators(self):
        # Signing in needs no prior authentication, so a stale token or session cookie cannot
        # get in the way (nor CSRF, which only applies to session-authenticated requests).
        if getattr(self.request, "method", None) == "POST":
            return []
        return super().get_authenticators()

    def get_throttles(self):
        if self.request.method == "POST":
            return [LoginThrottle(), AnonThrottle()]
        return [AnonThrottle(), UserThrottle()]

    @extend_schema(
        operation_id="auth_login",
        summary="Sign in: exchange email and password for a token",
        description="The account's email address must be verified. Sign-in attempts are throttled per IP "
        "address, and repeated failures for one address are refused for a while (429). Every sign-in returns a "
        "new token, valid until `expiry`; it is revoked by signing out, by a password change or reset, by "
        "signing out of the website, or from the profile page.",
        request=TokenRequestSerializer,
        responses={200: TokenSerializer},
        auth=[],
        tags=["auth"],
    )
    def post(self, request):
        credentials = TokenRequestSerializer(data=request.data)
        credentials.is_valid(raise_exception=True)
        try:
            user = get_adapter(request._request).authenticate(request._request, **credentials.validated_data)
        except DjangoValidationError as error:  # allauth's failed-login rate limit
            raise Throttled(detail=" ".join(error.messages))
        if user is None:
            raise serializers.ValidationError(WRONG_CREDENTIALS)
        if user.is_imported:  # as on the website: imported and simulated users never sign in
            raise PermissionDenied(
                "This account was imported to train recommendations; nobody can sign in to it.",
                code="account_inactive",
            )
        if not has_verified_email(user):
            raise PermissionDenied(
                "Verify your email address first: follow the link in the email we sent you.",
                code="email_not_verified",
            )
        stored, token = services.issue_api_token(user=user)
        update_last_login(None, user)
        return Response(TokenSerializer({"token": token, "expiry": stored.expiry}).data)

    @extend_schema(
        operation_id="auth_logout",
        summary="Sign out: revoke this token (or, signed in by session, end the session and every token)",
        request=None,
        responses={204: OpenApiResponse(description="Signed out.")},
        tags=["auth"],
    )
    def delete(self, request):
        if isinstance(request.auth, StoredToken):
            services.revoke_api_tokens(user=request.user, digest=request.auth.digest)
        if request.session.get("_auth_user_id"):
            logout(request._request)  # a sign-out of the website: revokes every token (accounts.receivers)
        return Response(status=status.HTTP_204_NO_CONTENT)


class Profile(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(summary="My account and profile", responses=ProfileSerializer, tags=["me"])
    def get(self, request):
        return Response(ProfileSerializer(request.user).data)

    @extend_schema(
        summary="Change my profile (birth year, gender, occupation, country)",
        request=ProfileSerializer,
        responses=ProfileSerializer,
        tags=["me"],
    )
    def patch(self, request):
        changes = ProfileSerializer(request.user, data=request.data, partial=True)
        changes.is_valid(raise_exception=True)
        user = services.update_profile(user=request.user, **changes.validated_data)
        return Response(ProfileSerializer(user).data)


class DataExport(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(summary="Download everything movierec holds about me", responses=DataExportSerializer, tags=["me"])
    def get(self, request):
        return Response(selectors.export_user_data(request.user))


class DeleteAccount(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        summary="Delete my account, ratings and lists for good",
        description="Confirmed with the current password, as on the site (attempts are rate-limited). An "
        "account without a password is deleted from the website, which confirms by an emailed link.",
        request=DeleteAccountSerializer,
        responses={204: OpenApiResponse(description="Account deleted.")},
        tags=["me"],
    )
    def post(self, request):
        payload = DeleteAccountSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        if not request.user.has_usable_password():
            raise serializers.ValidationError({"confirmation": [
                "This account has no password: delete it on the website's profile page, which emails you a "
                "confirmation link."]})
        form = DeleteAccountForm(data=payload.validated_data, user=request.user, request=request._request)
        if not form.is_valid():
            raise serializers.ValidationError(
                {field: [error["message"] for error in errors] for field, errors in form.errors.get_json_data().items()}
            )
        services.delete_account(user=request.user)
        if request.session.get("_auth_user_id"):
            logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("auth/token/", AuthToken.as_view(), name="auth-token"),
    path("me/", Profile.as_view(), name="me"),
    path("me/export/", DataExport.as_view(), name="me-export"),
    path("me/delete/", DeleteAccount.as_view(), name="me-delete"),
]
