"""Staff model page: fitted versions with their metrics, the cache state, refit and roll back."""
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse

from recommendations import cache, pipeline, tasks
from recommendations.models import ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "__str__", "is_current", "created_at", "published_at", "holdout_ndcg", "popularity_ndcg",
        "n_users", "n_items", "n_interactions", "train_seconds_display", "error_summary",
    ]
    list_filter = ["status", "is_current"]
    readonly_fields = [field.name for field in ModelVersion._meta.fields]
    actions = ["serve_selected_version"]
    change_list_template = "admin/recommendations/modelversion/change_list.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="nDCG@10")
    def holdout_ndcg(self, version):
        return _fmt(pipeline.holdout_scores(version)[0])

    @admin.display(description="popularity nDCG@10")
    def popularity_ndcg(self, version):
        return _fmt(pipeline.holdout_scores(version)[1])

    @admin.display(description="training time")
    def train_seconds_display(self, version):
        return f"{version.train_seconds:.1f} s"

    @admin.display(description="error")
    def error_summary(self, version):
        return version.error[:120]

    @admin.action(description="Serve the selected version (roll back) and warm its cache")
    def serve_selected_version(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to serve.", messages.ERROR)
            return
        version = queryset.get()
        if version.status not in (ModelVersion.Status.READY, ModelVersion.Status.PUBLISHED):
            self.message_user(
                request, f"v{version.pk} is {version.get_status_display()}: only a ready or published fit can serve.",
                messages.ERROR,
            )
            return
        if not version.artifact:
            self.message_user(
                request, f"v{version.pk}'s artifact was pruned: only the current version and the "
                f"{settings.RECOMMENDER_ROLLBACK_VERSIONS} servable fits before it are kept.", messages.ERROR,
            )
            return
        tasks.request_rollback(version)
        self.message_user(request, f"v{version.pk} will serve as soon as its cache is warm.", messages.SUCCESS)

    def get_urls(self):
        refit = path("refit/", self.admin_site.admin_view(self.refit_now_view), name="recommendations_modelversion_refit")
        return [refit, *super().get_urls()]

    def refit_now_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if tasks.request_refit(reason=f"requested by {request.user}"):
            self.message_user(request, "Refit enqueued. It is published only if it beats popularity.", messages.SUCCESS)
        else:
            self.message_user(request, "A refit is already running; not starting another.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:recommendations_modelversion_changelist"))

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "cache_status": cache.cache_status(),
                         "refit_url": reverse("admin:recommendations_modelversion_refit")}
        return super().changelist_view(request, extra_context=extra_context)


def _fmt(value):
    return "–" if value is None else f"{value:.4f}"
