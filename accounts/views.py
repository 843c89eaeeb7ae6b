"""Account pages of our own: profile, data export, account deletion (allauth does the rest)."""
import json

from allauth.account.adapter import get_adapter
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import selectors, services
from accounts.forms import DeleteAccountForm, ProfileForm


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    """The user's demographics (editable) and a summary of their activity."""
    if request.method == "POST":
        form = ProfileForm(request.POST, instance=request.user)
        if form.is_valid():
            services.update_profile(user=request.user, **{name: form.cleaned_data[name] for name in form.fields})
            messages.success(request, "Your profile has been saved.")
            return redirect("accounts:profile")
        # A rejected form must not leave half-applied values on request.user.
        request.user.refresh_from_db()
    else:
        form = ProfileForm(instance=request.user)
    context = {"form": form, "api_tokens": selectors.api_tokens(request.user), **selectors.user_activity(request.user)}
    return render(request, "accounts/profile.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def revoke_tokens(request):
    """Revoke one API token (the form's ``token``, its digest) or, with ``all``, every one."""
    digest = None if request.POST.get("all") else request.POST.get("token", "")
    revoked = services.revoke_api_tokens(user=request.user, digest=digest)
    if revoked:
        messages.success(request, f"{revoked} API token{'s' if revoked != 1 else ''} revoked: programs using "
                                  f"{'them' if revoked != 1 else 'it'} must sign in again.")
    else:
        messages.info(request, "That token was already revoked or had expired.")
    return redirect(f"{reverse('accounts:profile')}#api-tokens")


@login_required
@require_GET
def export_data(request):
    """"Download my data": everything we hold about the user as a JSON attachment."""
    data = selectors.export_user_data(request.user)
    data["exported_at"] = timezone.now().isoformat()
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )
    filename = f"movierec-data-{timezone.now():%Y%m%d}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def delete_account(request):
    """Confirm with the current password, then delete the account for good.

    An account without a password (created by staff without one) asks for a confirmation link
    by email instead.
    """
    user = request.user
    if not user.has_usable_password():
        if request.method == "POST":
            services.send_account_deletion_link(request, user=user)
            messages.success(request, f"We sent a confirmation link to {user.email}. It works for an hour.")
            return redirect("accounts:delete")
        return render(request, "accounts/delete_account.html", {"by_email": True})
    form = DeleteAccountForm(request.POST or None, user=user, request=request)
    if request.method == "POST" and form.is_valid():
        return _delete_and_sign_out(request)
    status = 400 if form.errors else 200
    return render(request, "accounts/delete_account.html", {"form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def confirm_delete_account(request, token):
    """The emailed deletion link: valid for an hour, for the signed-in user it was sent to."""
    if services.user_id_of_deletion_link(token) != request.user.pk:
        return render(request, "accounts/delete_account.html", {"bad_link": True}, status=400)
    if request.method == "POST":
        return _delete_and_sign_out(request)
    return render(request, "accounts/delete_account.html", {"confirm_link": True})


def _delete_and_sign_out(request):
    services.delete_account(user=request.user)
    get_adapter(request).logout(request)
    messages.success(request, "Your account, your ratings and your lists have been deleted.")
    return redirect("catalog:home")
