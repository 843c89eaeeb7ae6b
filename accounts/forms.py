"""Forms for the profile page, account deletion and password reset."""
from allauth.account.forms import ResetPasswordForm as AllauthResetPasswordForm
from allauth.core import ratelimit
from django import forms
from django.utils import timezone

from accounts.models import User
from accounts.services import validate_birth_year


class ProfileForm(forms.ModelForm):
    """The optional demographics a user may tell us; all of them can be left blank.

    Occupation is picked from a list (a value typed before the list existed stays offered, so
    saving the form never loses it); the birth-year box allows only 1900 to this year.
    """

    occupation = forms.ChoiceField(required=False)

    class Meta:
        model = User
        fields = ["birth_year", "gender", "occupation", "country"]
        help_texts = {"birth_year": "Optional. Helps recommendations when you have rated little."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = self.instance.occupation if self.instance.pk else ""
        choices = [("", "Prefer not to say"), *User.Occupation.choices]
        if stored and stored not in User.Occupation.values:
            choices.append((stored, stored))
        self.fields["occupation"].choices = choices
        self.fields["birth_year"].widget.attrs.update({"min": 1900, "max": timezone.now().year})

    def clean_birth_year(self):
        birth_year = self.cleaned_data.get("birth_year")
        validate_birth_year(birth_year)
        return birth_year


class DeleteAccountForm(forms.Form):
    """Deleting an account is confirmed with the current password (never just the email).

    Attempts count against allauth's "reauthenticate" rate limit, so a stolen session cannot
    use the form to guess the password. Accounts without a password confirm by email link
    (accounts.services.send_account_deletion_link) instead.
    """

    confirmation = forms.CharField(
        label="Your current password",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        strip=False,
    )

    def __init__(self, *args, user, request, **kwargs):
        self.user, self.request = user, request
        super().__init__(*args, **kwargs)

    def clean_confirmation(self):
        value = self.cleaned_data["confirmation"]
        if not ratelimit.consume(self.request, action="reauthenticate", user=self.user):
            raise forms.ValidationError("Too many attempts: wait a minute and try again.", code="rate_limited")
        if not self.user.check_password(value):
            raise forms.ValidationError("That is not your current password.", code="wrong_password")
        return value


class ResetPasswordForm(AllauthResetPasswordForm):
    """allauth's form, except that it never says whether an address has an account.

    (Sign-up does say so, a product decision: ACCOUNT_PREVENT_ENUMERATION is off for it.) An
    unknown address gets allauth's "no account with this address" email instead, and the page
    answers exactly as for a known one.
    """

    def clean_email(self):
        try:
            return super().clean_email()
        except forms.ValidationError as error:
            if error.code != "unknown_email":
                raise
            self.users = []
            return self.cleaned_data["email"]
