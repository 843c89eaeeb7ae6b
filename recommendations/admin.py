"""Staff model page: fitted versions with their metrics, the cache state, refit and roll back."""
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.timezone import localtime
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse

from recommendations import cache, pipeline, tasks
from recommendations.models import ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "label", "status_display", "created", "published", "holdout_ndcg", "popularity_ndcg",
        "data_size", "train_seconds_display", "artifact_kept", "error_summary",
    ]
    list_display_links = ["label"]
    list_filter = ["status", "is_current"]
    readonly_fields = [field.name for field in ModelVersion._meta.fields]
    actions = ["serve_selected_version"]
    change_list_template = "admin/recommendations/modelversion/change_list.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="version", ordering="pk")
    def label(self, version):
        return f"v{version.pk}"

    @admin.display(description="status", ordering="status")
    def status_display(self, version):
        return "serving" if version.is_current else version.status

    @admin.display(description="created", ordering="created_at")
    def created(self, version):
        return _when(version.created_at)

    @admin.display(description="published", ordering="published_at")
    def published(self, version):
        return _when(version.published_at)

    @admin.display(description="trained on", ordering="n_interactions")
    def data_size(self, version):
        return format_html("{} ratings<br>{} users, {} films", intcomma(version.n_interactions),
                           intcomma(version.n_users), intcomma(version.n_items))

    @admin.display(description="artifact", boolean=True)
    def artifact_kept(self, version):
        return bool(version.artifact)

    @admin.display(description="nDCG@10")
    def holdout_ndcg(self, version):
        return _fmt(pipeline.holdout_scores(version)[0])

    @admin.display(description="popularity")
    def popularity_ndcg(self, version):
        return _fmt(pipeline.holdout_scores(version)[1])

    @admin.display(description="fit time", ordering="train_seconds")
    def train_seconds_display(self, version):
        return f"{version.train_seconds:.1f} s"

    @admin.display(description="error")
    def error_summary(self, version):
        return Truncator(version.error).chars(90)

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
                         "refit_url": reverse("admin:recommendations_modelversion_refit"),
                         "rollback_versions": settings.RECOMMENDER_ROLLBACK_VERSIONS}
        return super().changelist_view(request, extra_context=extra_context)


def _fmt(value):
    return "–" if value is None else f"{value:.4f}"


def _when(moment):
    return "–" if moment is None else date_format(localtime(moment), "Y-m-d H:i")
