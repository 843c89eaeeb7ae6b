"""URLs of "Watch together" (group recommendations)."""
from django.urls import path

from recommendations import group_views

app_name = "groups"

urlpatterns = [
    path("groups/", group_views.group_list, name="list"),
    path("groups/<int:pk>/", group_views.group_detail, name="detail"),
    path("groups/<int:pk>/settings/", group_views.group_settings, name="settings"),
    path("groups/<int:pk>/invitations/", group_views.invitation_create, name="invite"),
    path("groups/<int:pk>/invitations/<int:invitation_id>/revoke/", group_views.invitation_revoke, name="revoke"),
    path("groups/<int:pk>/guests/", group_views.guest_add, name="add_guest"),
    path("groups/<int:pk>/members/<int:member_id>/remove/", group_views.member_remove, name="remove_member"),
    path("groups/<int:pk>/leave/", group_views.group_leave, name="leave"),
    path("groups/<int:pk>/delete/", group_views.group_delete, name="delete"),
    path("groups/join/<str:token>/", group_views.join, name="join"),
]
