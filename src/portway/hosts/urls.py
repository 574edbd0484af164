"""UI routes: /proxy-hosts and its form and actions."""

from django.urls import path

from portway.hosts import views

app_name = "hosts"

urlpatterns = [
    path("proxy-hosts", views.host_list, name="list"),
    path("proxy-hosts/new", views.host_create, name="create"),
    path("proxy-hosts/<int:host_id>", views.host_edit, name="edit"),
    path("proxy-hosts/<int:host_id>/enable", views.host_enable, name="enable"),
    path("proxy-hosts/<int:host_id>/disable", views.host_disable, name="disable"),
    path("proxy-hosts/<int:host_id>/delete", views.host_delete, name="delete"),
]
