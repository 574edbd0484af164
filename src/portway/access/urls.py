"""UI routes: /access-lists and its form and actions."""

from django.urls import path

from portway.access import views

app_name = "access"

urlpatterns = [
    path("access-lists", views.access_list_index, name="list"),
    path("access-lists/new", views.access_list_create, name="create"),
    path("access-lists/<int:access_list_id>", views.access_list_edit, name="edit"),
    path("access-lists/<int:access_list_id>/delete", views.access_list_delete, name="delete"),
    path("settings/real-ip", views.real_ip_settings, name="real_ip"),
    path("settings/real-ip/refresh", views.real_ip_refresh, name="real_ip_refresh"),
    path("settings/login-gate", views.gate_settings, name="gate_settings"),
]
