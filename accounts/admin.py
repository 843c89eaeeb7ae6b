"""The user admin: one "Accounts" section, with each user's email addresses and API tokens inline."""
from allauth.account.models import EmailAddress
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from knox.models import AuthToken

from accounts.models import ApiToken, User
from accounts.selectors import TOKEN_SHOWN_CHARACTERS

# allauth's email addresses and knox's tokens are edited on their user's page instead of in
# sections of their own (allauth's is also called "Accounts", so the index showed two).
for model in (EmailAddress, AuthToken):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


class UserCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("email",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].required = True

    def save(self, commit=True):
        # Staff create users by email; the internal username follows it, as on sign-up.
        self.instance.username = self.instance.username or self.cleaned_data["email"]
        return super().save(commit=commit)


class EmailAddressInline(admin.TabularInline):
    model = EmailAddress
    fields = ("email", "verified", "primary")
    extra = 0


class ApiTokenInline(admin.TabularInline):
    """The user's API tokens; deleting one here revokes it."""

    model = ApiToken
    fields = ("starts_with", "created", "expiry")
    readonly_fields = fields
    extra = 0
    verbose_name = "API token"
    verbose_name_plural = "API tokens (delete to revoke)"

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="token starts with")
    def starts_with(self, token):
        return f"{token.token_key[:TOKEN_SHOWN_CHARACTERS]}…"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    list_display = ("email", "username", "source", "is_staff", "is_active", "date_joined")
    list_filter = ("source", "is_staff", "is_superuser", "is_active", "gender")
    search_fields = ("email", "username", "external_id")
    ordering = ("-date_joined",)
    readonly_fields = ("last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("email", "username", "password")}),
        ("Origin", {"fields": ("source", "external_id")}),
        ("Demographics", {"fields": ("birth_year", "gender", "occupation", "country")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "usable_password", "password1", "password2")}),)
    inlines = [EmailAddressInline, ApiTokenInline]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []  # adding a user asks for email and password only
