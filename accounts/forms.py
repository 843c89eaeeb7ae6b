"""Forms for the profile page and the account deletion confirmation."""
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
    """Deleting an account is confirmed with the current password or, without one, the email."""

    confirmation = forms.CharField(
        label="Your current password or your email address",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        strip=False,
    )

    def __init__(self, *args, user, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_confirmation(self):
        value = self.cleaned_data["confirmation"]
        typed_email = bool(self.user.email) and value.strip().lower() == self.user.email.lower()
        if not (typed_email or self.user.check_password(value)):
            raise forms.ValidationError("That is neither your current password nor your email address.")
        return value
