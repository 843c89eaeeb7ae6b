from django.db import models


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
