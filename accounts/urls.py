from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("tokens/revoke/", views.revoke_tokens, name="revoke_tokens"),
    path("export/", views.export_data, name="export"),
    path("delete/", views.delete_account, name="delete"),
    path("delete/confirm/<str:token>/", views.confirm_delete_account, name="confirm_delete"),
]
