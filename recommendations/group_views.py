"""Pages of "Watch together": your groups, a group's list, invitations, guests, leaving.

Thin adapters over recommendations.group_services (writes) and group_selectors (reads). A
group is found only among the signed-in user's own groups: anyone else gets a 404.
"""
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog import history_import
from catalog.models import Genre
from catalog.selectors import catalogue_decades
from recommendations import group_selectors, group_services, impressions
from recommendations.models import WatchGroup, WatchGroupInvitation, WatchGroupMember

RUNTIME_CHOICES = [(90, "up to 1 h 30"), (120, "up to 2 h"), (150, "up to 2 h 30"), (180, "up to 3 h")]


class CreateGroupForm(forms.Form):
    name = forms.CharField(label="Group name", max_length=80, help_text="For example “Friday film club”.")
    member_name = forms.CharField(label="Your name in the group", max_length=40,
                                  help_text="What the others will see. They never see your ratings.")


class JoinForm(forms.Form):
    member_name = forms.CharField(label="Your name in the group", max_length=40,
                                  help_text="What the others will see. They never see your ratings.")


class SettingsForm(forms.Form):
    strategy = forms.ChoiceField(label="How we choose", choices=WatchGroup.STRATEGIES)
    floor = forms.TypedChoiceField(label="Nobody below", choices=WatchGroup.FLOORS, coerce=float,
                                   help_text="Predicted stars; used by “average, nobody below the floor”.")


class InvitationForm(forms.Form):
    days = forms.TypedChoiceField(label="Link valid for", coerce=int, initial=group_services.DEFAULT_INVITATION_DAYS,
                                  choices=[(d, f"{d} day{'s' if d > 1 else ''}") for d in group_services.INVITATION_DAYS])


class GuestForm(forms.Form):
    name = forms.CharField(label="Guest's name", max_length=40)
    file = forms.FileField(label="Their Letterboxd export",
                           help_text="The export zip or its ratings.csv (Letterboxd → Settings → Import & Export). "
                                     "Used only for this group, never shown, deleted with the guest.")


class FilterForm(forms.Form):
    genre = forms.ModelChoiceField(queryset=Genre.objects.all(), to_field_name="slug", required=False,
                                   empty_label="Any genre")
    decade = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    max_runtime = forms.TypedChoiceField(label="Length", coerce=int, required=False, empty_value=None,
                                         choices=[("", "Any length")] + RUNTIME_CHOICES)
    watchlist = forms.BooleanField(label="On someone's watchlist", required=False)

    def __init__(self, *args, decades, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["decade"].choices = [("", "Any decade")] + [(d, f"{d}s") for d in decades]

    def filters(self) -> group_selectors.GroupFilters:
        data = self.cleaned_data
        return group_selectors.GroupFilters(genre=data["genre"], decade=data["decade"],
                                            max_runtime=data["max_runtime"], on_watchlist=data["watchlist"])


def _group(request, pk) -> WatchGroup:
    return get_object_or_404(group_selectors.groups_for_user(request.user), pk=pk)


def _detail(request, group, *, guest_form=None, status=200):
    filter_form = FilterForm(request.GET or None, decades=catalogue_decades())
    has_runtimes = group_selectors.catalogue_has_runtimes()
    if not has_runtimes:
        del filter_form.fields["max_runtime"]
    if filter_form.is_bound and not filter_form.is_valid():
        group_list = group_selectors.GroupList(group_selectors.group_members(group), notice="Check the filters.")
        status = 400
    else:
        filters = filter_form.filters() if filter_form.is_bound else None
        group_list = group_selectors.group_recommendations(group, filters=filters)
        impressions.log_shown(request.user, "group", [item.movie for item in group_list.items], in_experiment=False)
    me = next(m for m in group_list.members if m.user_id == request.user.pk)
    invitations = group_selectors.active_invitations(group)
    context = {
        "group": group,
        "me": me,
        "is_owner": group.owner_id == request.user.pk,
        "list": group_list,
        "filter_form": filter_form,
        "settings_form": SettingsForm(initial={"strategy": group.strategy, "floor": group.floor}),
        "invitation_form": InvitationForm(),
        "guest_form": guest_form or GuestForm(),
        "invitations": [(inv, request.build_absolute_uri(reverse("groups:join", args=[inv.token])),
                         request.user.pk in (inv.created_by_id, group.owner_id))
                        for inv in invitations],
        "room": group_services.MAX_MEMBERS - len(group_list.members),
        "max_members": group_services.MAX_MEMBERS,
    }
    return render(request, "groups/detail.html", context, status=status)


def _error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


def _add_errors(form: forms.Form, error: ValidationError) -> None:
    """A service's ValidationError onto the form: on its field when the form has that field."""
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


@login_required
@require_http_methods(["GET", "POST"])
def group_list(request):
    """Your groups, and a form to start one."""
    form = CreateGroupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            group = group_services.create_group(owner=request.user, **form.cleaned_data)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, f"{group.name} is ready: invite the others with a link.")
            return redirect("groups:detail", group.pk)
    groups = group_selectors.groups_for_user(request.user)
    return render(request, "groups/list.html", {"groups": groups, "form": form},
                  status=400 if form.errors else 200)


@login_required
@require_GET
def group_detail(request, pk):
    return _detail(request, _group(request, pk))


@login_required
@require_POST
def group_settings(request, pk):
    group = _group(request, pk)
    form = SettingsForm(request.POST)
    if form.is_valid():
        group_services.update_group(group, by=request.user, **form.cleaned_data)
        messages.success(request, "The group's way of choosing is saved.")
    else:
        messages.error(request, "Choose a strategy and a floor from the lists.")
    return redirect("groups:detail", group.pk)


@login_required
@require_POST
def invitation_create(request, pk):
    group = _group(request, pk)
    form = InvitationForm(request.POST)
    if form.is_valid():
        group_services.create_invitation(group, by=request.user, days=form.cleaned_data["days"])
        messages.success(request, "New invitation link below: send it to the people you want in the group.")
    else:
        messages.error(request, "Choose how long the link stays valid.")
    return redirect(reverse("groups:detail", args=[group.pk]) + "#invite")


@login_required
@require_POST
def invitation_revoke(request, pk, invitation_id):
    group = _group(request, pk)
    invitation = get_object_or_404(WatchGroupInvitation, pk=invitation_id, group=group)
    group_services.revoke_invitation(invitation, by=request.user)
    messages.success(request, "The link no longer works.")
    return redirect(reverse("groups:detail", args=[group.pk]) + "#invite")


@login_required
@require_POST
def guest_add(request, pk):
    group = _group(request, pk)
    form = GuestForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > history_import.MAX_UPLOAD_BYTES:
            form.add_error("file", f"{upload.name} is larger than {history_import.MAX_UPLOAD_BYTES // 2**20} MB.")
        else:
            try:
                added = group_services.add_guest(group, by=request.user, name=form.cleaned_data["name"],
                                                 filename=upload.name, data=upload.read())
            except ValidationError as error:
                _add_errors(form, error)
            else:
                messages.success(request, _guest_summary(added))
                return redirect("groups:detail", group.pk)
    return _detail(request, group, guest_form=form, status=400)


def _guest_summary(added: group_services.GuestImport) -> str:
    text = f"{added.member.name} joined as a guest: {added.ratings} rating{'s' if added.ratings != 1 else ''}"
    if added.watchlist:
        text += f" and {added.watchlist} watchlist film{'s' if added.watchlist != 1 else ''}"
    text += " matched the catalogue."
    left = []
    if added.ambiguous:
        left.append(f"{added.ambiguous} title{'s' if added.ambiguous != 1 else ''} matched several films")
    if added.unmatched:
        left.append(f"{added.unmatched} matched none")
    if left:
        text += f" Left out: {' and '.join(left)}."
    return text


@login_required
@require_POST
def member_remove(request, pk, member_id):
    group = _group(request, pk)
    member = get_object_or_404(WatchGroupMember, pk=member_id, group=group)
    group_services.remove_member(member, by=request.user)
    if member.user_id == request.user.pk:
        messages.success(request, f"You left {group.name}.")
        return redirect("groups:list")
    messages.success(request, f"{member.name} is no longer in {group.name}.")
    return redirect("groups:detail", group.pk)


@login_required
@require_POST
def group_leave(request, pk):
    group = _group(request, pk)
    group_services.leave_group(group, user=request.user)
    messages.success(request, f"You left {group.name}.")
    return redirect("groups:list")


@login_required
@require_POST
def group_delete(request, pk):
    group = _group(request, pk)
    name = group.name
    group_services.delete_group(group, by=request.user)
    messages.success(request, f"{name} is deleted, with its guests and their films.")
    return redirect("groups:list")


@login_required
@require_http_methods(["GET", "POST"])
def join(request, token):
    """An invitation link: who is in the group, and a form to join it under a name."""
    try:
        invitation = group_services.usable_invitation(token)
    except ValidationError as error:
        return render(request, "groups/join.html", {"problem": _error_text(error)}, status=404)
    group = invitation.group
    if group.members.filter(user_id=request.user.pk).exists():
        return redirect("groups:detail", group.pk)
    form = JoinForm(request.POST or None, initial={"member_name": request.user.email.split("@")[0][:40]})
    if request.method == "POST" and form.is_valid():
        try:
            group_services.join_group(token=token, user=request.user, member_name=form.cleaned_data["member_name"])
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, f"Welcome to {group.name}.")
            return redirect("groups:detail", group.pk)
    members = group_selectors.group_members(group)
    context = {"group": group, "members": members, "form": form, "full": len(members) >= group_services.MAX_MEMBERS}
    return render(request, "groups/join.html", context, status=400 if form.errors else 200)
