from django.conf import settings
from django.db import models

from catalog.models import HALF_STARS
from recommendations import group_ranking
from recommendations.rerank import DEFAULT_DISCOVERY, DISCOVERY_LEVELS


class ModelVersion(models.Model):
    """One fit of the recommender: where its artifact lives, how it was made, how it scored."""

    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        READY = "ready", "Ready (not published)"
        PUBLISHED = "published", "Published"
        REJECTED = "rejected", "Rejected by the holdout check"
        FAILED = "failed", "Failed"

    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRAINING, db_index=True)
    is_current = models.BooleanField(default=False, help_text="The version the site serves.")
    artifact = models.CharField(max_length=300, blank=True, help_text="Path in the default storage.")
    hyperparameters = models.JSONField(default=dict, blank=True)
    n_users = models.PositiveIntegerField(default=0)
    n_items = models.PositiveIntegerField(default=0)
    n_interactions = models.PositiveIntegerField(default=0)
    train_seconds = models.FloatField(default=0.0)
    metrics = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["is_current"], condition=models.Q(is_current=True), name="one_current_model")
        ]

    def __str__(self):
        return f"v{self.pk} ({self.get_status_display()})"


class GenrePreference(models.Model):
    """A genre the user picked as a favourite during onboarding; a user feature for the engine."""

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="genre_preferences")
    genre = models.ForeignKey("catalog.Genre", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "genre"], name="unique_genre_preference")]

    def __str__(self):
        return f"{self.user} likes {self.genre}"


class HistoryImport(models.Model):
    """One upload of a Letterboxd or IMDb export: its matched rows (the preview) and apply progress.

    Nothing reaches the user's ratings or watchlist until the preview is confirmed; then a
    background job applies the chosen rows and records its progress here for the progress bar.
    """

    class Source(models.TextChoices):
        LETTERBOXD = "letterboxd", "Letterboxd"
        IMDB = "imdb", "IMDb"

    class Status(models.TextChoices):
        PREVIEW = "preview", "Waiting for confirmation"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="history_imports")
    source = models.CharField(max_length=16, choices=Source.choices)
    filename = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PREVIEW)
    rows = models.JSONField(default=list, help_text="Parsed and matched rows, as shown in the preview.")
    total = models.PositiveIntegerField(default=0, help_text="Rows to apply once confirmed.")
    done = models.PositiveIntegerField(default=0)
    ratings_saved = models.PositiveIntegerField(default=0)
    watchlist_saved = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.get_source_display()} import #{self.pk} ({self.get_status_display()})"


class UserVector(models.Model):
    """A user's representation re-estimated by fold-in after they rated or hid something."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    vector = models.BinaryField(help_text="float32 LightFM user vector")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"vector of user {self.user_id} for {self.model_version}"


# ----------------------------------------------------------------------------- watch together


class WatchGroup(models.Model):
    """A "watch together" group: 2 to 8 members (accounts and guests) picking a film together.

    Members see the group's names and predictions only, never each other's ratings.
    """

    STRATEGIES = list(group_ranking.STRATEGIES.items())
    FLOORS = [(2.5, "2½ stars"), (3.0, "3 stars"), (3.5, "3½ stars")]

    name = models.CharField(max_length=80)
    # Never empty for long: when the owner goes, the longest-standing account member takes over
    # (recommendations.group_services), and a group without account members is deleted.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    strategy = models.CharField(max_length=32, choices=STRATEGIES, default=group_ranking.DEFAULT_STRATEGY)
    floor = models.FloatField(default=group_ranking.DEFAULT_FLOOR, choices=FLOORS,
                              help_text="Average without misery: nobody's predicted stars below this.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name


class WatchGroupMember(models.Model):
    """A member of a group: an account, or a guest (no account) whose films came from an export."""

    group = models.ForeignKey(WatchGroup, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+", help_text="Empty for a guest.")
    name = models.CharField(max_length=40, help_text="The name the group sees.")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+", help_text="Who added the guest.")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["joined_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["group", "user"], condition=models.Q(user__isnull=False),
                                    name="one_membership_per_user"),
            models.UniqueConstraint(fields=["group", "name"], name="unique_member_name_in_group"),
        ]

    @property
    def is_guest(self) -> bool:
        return self.user_id is None

    def __str__(self):
        return f"{self.name} in {self.group}"


class WatchGroupGuestFilm(models.Model):
    """A film from a guest's export, kept for that group only: rated (score) or on their
    watchlist (no score). Deleted with the guest and with the group."""

    member = models.ForeignKey(WatchGroupMember, on_delete=models.CASCADE, related_name="guest_films")
    movie = models.ForeignKey("catalog.Movie", on_delete=models.CASCADE, related_name="+")
    score = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "movie"], name="one_guest_film_per_movie"),
            models.CheckConstraint(condition=models.Q(score__isnull=True) | models.Q(score__in=HALF_STARS),
                                   name="guest_score_half_stars"),
        ]


class WatchGroupInvitation(models.Model):
    """A link that lets whoever holds it join the group until it expires or is revoked."""

    group = models.ForeignKey(WatchGroup, on_delete=models.CASCADE, related_name="invitations")
    token = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"invitation to {self.group} until {self.expires_at:%Y-%m-%d}"


class PendingRefresh(models.Model):
    """A user whose cached list must follow a change of their ratings or hidden films.

    Written with the change and deleted by the refresh task once the new list is stored, so a
    refresh lost with Redis (or never sent because it was down) leaves its row behind, and the
    sweep (recommendations.tasks.resend_lost_refreshes) sends it again.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+")
    changed_at = models.DateTimeField(help_text="The user's latest change not yet in their cached list.")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When a refresh task was last sent for it.")

    def __str__(self):
        return f"refresh of user {self.user_id} pending since {self.changed_at:%Y-%m-%d %H:%M:%S}"


class DiscoveryPreference(models.Model):
    """Where the user set the discovery dial: from popular films (0) to hidden gems (4)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    level = models.PositiveSmallIntegerField(choices=list(DISCOVERY_LEVELS.items()), default=DEFAULT_DISCOVERY)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(level__lte=4), name="discovery_level_0_to_4")]

    def __str__(self):
        return f"discovery {self.level} for user {self.user_id}"


# ----------------------------------------------------------------------------- measuring recommendations


class Experiment(models.Model):
    """An A/B test between two arms, each a published model version and/or a discovery dial position.

    A user's arm follows from a hash of the experiment id and the user id (recommendations.experiments):
    deterministic and sticky, nothing stored per user. At most one experiment runs at a time.
    """

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        ENDED = "ended", "Ended"

    name = models.CharField(max_length=80)
    a_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                  help_text="Arm A's model version (empty: the version being served).")
    b_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                  help_text="Arm B's model version (empty: the version being served).")
    a_discovery = models.PositiveSmallIntegerField(null=True, blank=True, choices=list(DISCOVERY_LEVELS.items()),
                                                   help_text="Arm A's dial position for users who never moved it.")
    b_discovery = models.PositiveSmallIntegerField(null=True, blank=True, choices=list(DISCOVERY_LEVELS.items()),
                                                   help_text="Arm B's dial position for users who never moved it.")
    b_share = models.FloatField(default=0.5, help_text="Share of users in arm B (0 to 1).")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    result = models.TextField(blank=True, help_text="What ending the experiment did.")

    class Meta:
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["status"], condition=models.Q(status="running"), name="one_running_experiment"),
            models.CheckConstraint(condition=models.Q(b_share__gt=0) & models.Q(b_share__lt=1), name="experiment_split_0_1"),
        ]

    def __str__(self):
        return f"experiment {self.pk}: {self.name}"


class Impression(models.Model):
    """One recommendation shown to a user (a film in a row at a position), with what the user did
    about it within IMPRESSIONS_OUTCOME_WINDOW_HOURS: opened its page, put it on the watchlist,
    rated it (the stars), hid it. Written in batches from the Redis buffer (recommendations.impressions)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    movie = models.ForeignKey("catalog.Movie", on_delete=models.CASCADE, related_name="+")
    row = models.CharField(max_length=16)
    position = models.PositiveSmallIntegerField()
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    experiment = models.ForeignKey(Experiment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    arm = models.CharField(max_length=1, blank=True)
    shown_at = models.DateTimeField(db_index=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    watchlisted_at = models.DateTimeField(null=True, blank=True)
    rated_at = models.DateTimeField(null=True, blank=True)
    stars = models.FloatField(null=True, blank=True)
    hidden_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "movie", "shown_at"], name="impression_user_movie_shown")]

    def __str__(self):
        return f"{self.movie_id} shown to {self.user_id} in {self.row}#{self.position}"


class ImpressionDaily(models.Model):
    """Impressions of one day, row, model version and experiment arm, added up when their raw rows
    were pruned (IMPRESSIONS_RETENTION_DAYS)."""

    day = models.DateField(db_index=True)
    row = models.CharField(max_length=16)
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    experiment = models.ForeignKey(Experiment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    arm = models.CharField(max_length=1, blank=True)
    impressions = models.PositiveIntegerField(default=0)
    opened = models.PositiveIntegerField(default=0)
    watchlisted = models.PositiveIntegerField(default=0)
    rated = models.PositiveIntegerField(default=0)
    stars_sum = models.FloatField(default=0.0)
    hidden = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.day} {self.row} v{self.model_version_id} {self.arm}: {self.impressions}"
