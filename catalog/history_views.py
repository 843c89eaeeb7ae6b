"""Pages of "Bring your history": upload, preview, confirm, progress, and the Letterboxd export."""
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog import history_import
from catalog.forms import HistoryConfirmForm, HistoryUploadForm
from recommendations.models import HistoryImport


@login_required
@require_http_methods(["GET", "POST"])
def upload(request):
    form = HistoryUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload_file = form.cleaned_data["file"]
        if upload_file.size > history_import.MAX_UPLOAD_BYTES:
            form.add_error("file", f"{upload_file.name} is larger than {history_import.MAX_UPLOAD_BYTES // history_import.MiB} MB.")
        else:
            try:
                job = history_import.create_history_import(
                    user=request.user, filename=upload_file.name, data=upload_file.read()
                )
            except history_import.HistoryFileError as error:
                form.add_error("file", str(error))
            else:
                return redirect("history:preview", job.pk)
    status = 400 if request.method == "POST" else 200
    recent = HistoryImport.objects.filter(user=request.user).exclude(status=HistoryImport.Status.PREVIEW)[:5]
    return render(request, "experience/history_upload.html", {"form": form, "recent": recent}, status=status)


def _preview_page(request, job, *, scale, form=None, status=200):
    context = {
        "job": job,
        "form": form,
        "groups": history_import.history_import_preview(job),
        "is_imdb": job.source == HistoryImport.Source.IMDB,
        "scales": [
            (key, label, history_import.imdb_scale_table(key)) for key, label in history_import.IMDB_SCALES.items()
        ],
        "scale": scale,
    }
    return render(request, "experience/history_preview.html", context, status=status)


@login_required
@require_GET
def preview(request, pk):
    job = get_object_or_404(HistoryImport, pk=pk, user=request.user)
    if job.status != HistoryImport.Status.PREVIEW:
        return redirect("history:status", job.pk)
    scale = request.GET.get("scale", history_import.DEFAULT_IMDB_SCALE)
    if scale not in history_import.IMDB_SCALES:
        scale = history_import.DEFAULT_IMDB_SCALE
    return _preview_page(request, job, scale=scale)


@login_required
@require_POST
def confirm(request, pk):
    job = get_object_or_404(HistoryImport, pk=pk, user=request.user)
    if job.status != HistoryImport.Status.PREVIEW:  # a second click, or another tab: show the import
        return redirect("history:status", job.pk)
    form = HistoryConfirmForm(request.POST, rows=job.rows)
    if not form.is_valid():
        scale = form.cleaned_data.get("scale") or history_import.DEFAULT_IMDB_SCALE
        return _preview_page(request, job, scale=scale, form=form, status=400)
    try:
        history_import.confirm_history_import(job, **form.plan())
    except history_import.AlreadyConfirmed:  # a concurrent request confirmed it first
        return redirect("history:status", job.pk)
    history_import.start_history_import(job)
    return redirect("history:status", job.pk)


@login_required
@require_GET
def status(request, pk):
    job = get_object_or_404(HistoryImport, pk=pk, user=request.user)
    return render(
        request, "experience/history_status.html", {"job": job, "progress": history_import.history_import_progress(job)}
    )


@login_required
@require_GET
def progress(request, pk):
    job = get_object_or_404(HistoryImport, pk=pk, user=request.user)
    return JsonResponse(history_import.history_import_progress(job))


@login_required
@require_GET
def export_letterboxd(request):
    response = HttpResponse(history_import.export_letterboxd_csv(request.user), content_type="text/csv; charset=utf-8")
    filename = f"movierec-ratings-{timezone.localdate().isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
