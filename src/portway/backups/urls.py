"""UI routes: /settings/backups."""

from django.urls import path

from portway.backups import views

app_name = "backups"

urlpatterns = [
    path("settings/backups", views.backups, name="backups"),
    path("settings/backups/now", views.backup_now, name="backup_now"),
]
