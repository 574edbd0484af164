"""UI routes: /settings, /audit-log."""

from django.urls import path

from portway.nginx import views

app_name = "nginx"

urlpatterns = [
    path("settings", views.settings_index, name="settings"),
    path("settings/default-site", views.default_site, name="default_site"),
    path("settings/admin-domain", views.admin_domain, name="admin_domain"),
    path("audit-log", views.audit_log, name="audit_log"),
]
