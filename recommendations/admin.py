"""Staff model page: fitted versions with their metrics, the cache state, refit and roll back,
what the recommendations shown achieved (impressions) and A/B experiments between versions."""
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.timezone import localtime
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from recommendations import cache, experiments, impression_stats, pipeline, tasks
from recommendations.models import Experiment, ModelVersion
from recommendations.rerank import DISCOVERY_LEVELS

SERVED = ""  # form value: the version being served
AS_USUAL = ""  # form value: the user's own dial position


class ExperimentForm(forms.Form):
    """Start an A/B experiment: two arms, each a version and/or a discovery position, and a split."""

    name = forms.CharField(max_length=80)
    a_version = forms.ChoiceField(label="Arm A version", required=False)
    a_discovery = forms.ChoiceField(label="Arm A discovery", required=False)
    b_version = forms.ChoiceField(label="Arm B version", required=False)
    b_discovery = forms.ChoiceField(label="Arm B discovery", required=False)
    b_share = forms.FloatField(label="Share in arm B", min_value=0.01, max_value=0.99, initial=0.5)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        servable = ModelVersion.objects.filter(status__in=[ModelVersion.Status.READY, ModelVersion.Status.PUBLISHED]
                                               ).exclude(artifact="")
        versions = [(SERVED, "the version being served")] + [
            (str(v.pk), f"v{v.pk}{' (serving)' if v.is_current else ''}") for v in servable]
        levels = [(AS_USUAL, "as usual")] + [(str(k), label) for k, label in DISCOVERY_LEVELS.items()]
        for name in ("a_version", "b_version"):
            self.fields[name].choices = versions
        for name in ("a_discovery", "b_discovery"):
            self.fields[name].choices = levels

    def arms(self) -> dict:
        data = self.cleaned_data
        version = lambda value: ModelVersion.objects.get(pk=int(value)) if value else None
        level = lambda value: int(value) if value != "" else None
        return {"a_version": version(data["a_version"]), "b_version": version(data["b_version"]),
                "a_discovery": level(data["a_discovery"]), "b_discovery": level(data["b_discovery"]),
                "b_share": data["b_share"]}


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
        view = self.admin_site.admin_view
        return [
            path("refit/", view(self.refit_now_view), name="recommendations_modelversion_refit"),
            path("impressions.png", view(self.impressions_plot_view), name="recommendations_impressions_plot"),
            path("experiments/start/", view(self.start_experiment_view), name="recommendations_experiment_start"),
            path("experiments/<int:pk>/end/", view(self.end_experiment_view), name="recommendations_experiment_end"),
            path("experiments/<int:pk>/arms.png", view(self.experiment_plot_view),
                 name="recommendations_experiment_plot"),
            *super().get_urls(),
        ]

    def impressions_plot_view(self, request):
        return HttpResponse(impression_stats.daily_plot_png(), content_type="image/png")

    def experiment_plot_view(self, request, pk):
        report = impression_stats.experiment_report(get_object_or_404(Experiment, pk=pk))
        return HttpResponse(impression_stats.experiment_plot_png(report), content_type="image/png")

    def start_experiment_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        form = ExperimentForm(request.POST)
        if not form.is_valid():
            self.message_user(request, f"Experiment not started: {form.errors.as_text()}", messages.ERROR)
        else:
            try:
                experiment = experiments.start_experiment(name=form.cleaned_data["name"], started_by=request.user,
                                                          **form.arms())
                self.message_user(request, f"Started {experiment}.", messages.SUCCESS)
            except ValueError as error:
                self.message_user(request, f"Experiment not started: {error}", messages.ERROR)
        return HttpResponseRedirect(reverse("admin:recommendations_modelversion_changelist") + "#experiments")

    def end_experiment_view(self, request, pk):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        experiment = get_object_or_404(Experiment, pk=pk)
        keep = request.POST.get("keep") or None
        try:
            self.message_user(request, experiments.end_experiment(experiment, keep=keep), messages.SUCCESS)
        except ValueError as error:
            self.message_user(request, str(error), messages.ERROR)
        return HttpResponseRedirect(reverse("admin:recommendations_modelversion_changelist") + "#experiments")

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
                         "rollback_versions": settings.RECOMMENDER_ROLLBACK_VERSIONS,
                         **_measuring_context()}
        return super().changelist_view(request, extra_context=extra_context)


def _measuring_context() -> dict:
    running = Experiment.objects.filter(status=Experiment.Status.RUNNING).first()
    finished = list(Experiment.objects.filter(status=Experiment.Status.ENDED)[:5])
    return {
        "impression_rows": impression_stats.by_row_and_version(),
        "impression_total": impression_stats.total_impressions(),
        "outcome_window": settings.IMPRESSIONS_OUTCOME_WINDOW_HOURS,
        "retention_days": settings.IMPRESSIONS_RETENTION_DAYS,
        "impressions_enabled": settings.IMPRESSIONS_ENABLED,
        "experiment": impression_stats.experiment_report(running) if running else None,
        "ended_experiments": [impression_stats.experiment_report(e) for e in finished],
        "experiment_form": None if running else ExperimentForm(),
    }


def _fmt(value):
    return "–" if value is None else f"{value:.4f}"


def _when(moment):
    return "–" if moment is None else date_format(localtime(moment), "Y-m-d H:i")
