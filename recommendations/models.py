from django.conf import settings
from django.db import models

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


class DiscoveryPreference(models.Model):
    """Where the user set the discovery dial: from popular films (0) to hidden gems (4)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    level = models.PositiveSmallIntegerField(choices=list(DISCOVERY_LEVELS.items()), default=DEFAULT_DISCOVERY)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(level__lte=4), name="discovery_level_0_to_4")]

    def __str__(self):
        return f"discovery {self.level} for user {self.user_id}"
