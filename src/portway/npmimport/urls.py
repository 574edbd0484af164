"""UI route: /settings/import-npm (administrators)."""

from django.urls import path

from portway.npmimport import views

app_name = "npmimport"

urlpatterns = [path("settings/import-npm", views.import_page, name="import")]
