from django.contrib.auth.models import AbstractUser, UserManager
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from knox.models import AuthToken


class MovierecUserManager(UserManager):
    """Users sign in with their email; a username is still kept, derived from it."""

    def create_user(self, username=None, email=None, password=None, **extra_fields):
        username = username or email
        return super().create_user(username, email, password, **extra_fields)

    def create_superuser(self, username=None, email=None, password=None, **extra_fields):
        username = username or email
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    """A person who rates movies; imported MovieLens users and simulated demo users too.

    Imported and simulated users have an unusable password: their ratings train the model,
    they never sign in.
    """

    class Source(models.TextChoices):
        SITE = "site", "Signed up on the site"
        MOVIELENS = "movielens", "Imported from MovieLens"
        SIMULATED = "simulated", "Simulated (demo catalogue)"

    class Gender(models.TextChoices):
        FEMALE = "F", "Female"
        MALE = "M", "Male"
        OTHER = "O", "Other"

    class Occupation(models.TextChoices):
        """What the profile offers: MovieLens 100K's occupations ("none" aside), stored as MovieLens spells them.

        Not the field's choices: imported users keep their release's own words (MovieLens 1M's
        "academic/educator", ...), and site users who typed their own before keep it.
        """

        ADMINISTRATOR = "administrator", "Administrator"
        ARTIST = "artist", "Artist"
        DOCTOR = "doctor", "Doctor"
        EDUCATOR = "educator", "Educator"
        ENGINEER = "engineer", "Engineer"
        ENTERTAINMENT = "entertainment", "Entertainment"
        EXECUTIVE = "executive", "Executive"
        HEALTHCARE = "healthcare", "Healthcare"
        HOMEMAKER = "homemaker", "Homemaker"
        LAWYER = "lawyer", "Lawyer"
        LIBRARIAN = "librarian", "Librarian"
        MARKETING = "marketing", "Marketing"
        PROGRAMMER = "programmer", "Programmer"
        RETIRED = "retired", "Retired"
        SALES = "salesman", "Sales"
        SCIENTIST = "scientist", "Scientist"
        STUDENT = "student", "Student"
        TECHNICIAN = "technician", "Technician"
        WRITER = "writer", "Writer"
        OTHER = "other", "Other"

    email = models.EmailField("email address", blank=True)
    birth_year = models.PositiveSmallIntegerField(null=True, blank=True)
    gender = models.CharField(max_length=1, choices=Gender.choices, blank=True)
    occupation = models.CharField(max_length=64, blank=True)
    country = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.SITE, db_index=True)
    external_id = models.CharField(
        max_length=64, blank=True, help_text="The user's id in the source it was imported from."
    )

    objects = MovierecUserManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~models.Q(external_id=""),
                name="unique_external_user",
            ),
            models.CheckConstraint(
                condition=models.Q(birth_year__isnull=True)
                | models.Q(birth_year__gte=1900, birth_year__lte=2100),
                name="birth_year_plausible",
            ),
        ]

    @property
    def is_imported(self) -> bool:
        return self.source != self.Source.SITE

    def save(self, *args, **kwargs):
        """Saving a new password (set_password, whatever the path) revokes every API token.

        Only a real change: Django's hash upgrade on sign-in saves the password without
        set_password's marker, so it revokes nothing.
        """
        password_changed = self._password is not None and not self._state.adding
        super().save(*args, **kwargs)
        if password_changed:
            self.auth_token_set.all().delete()

    def __str__(self):
        return self.email or self.username


class UserSession(AbstractBaseSession):
    """A website session, with the id of the user signed in to it (none for visitors).

    Django's database sessions keep the user id only inside the encoded data; with it in a
    column, deleting an account deletes its sessions at once (the foreign key cascades).
    Used through SESSION_ENGINE = "accounts.sessions".
    """

    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE, related_name="+")

    @classmethod
    def get_session_store_class(cls):
        from accounts.sessions import SessionStore

        return SessionStore


class ApiToken(AuthToken):
    """knox's API token, named by its first characters (knox's own name shows its digest)."""

    class Meta:
        proxy = True
        verbose_name = "API token"

    def __str__(self):
        return f"token {self.token_key[:8]}…"
