"""UI routes of tunnel hosts."""

from django.urls import path

from portway.tunnels import views

app_name = "tunnels"

urlpatterns = [
    path("tunnels", views.tunnel_list, name="list"),
    path("tunnels/new", views.tunnel_create, name="create"),
    path("tunnels/<int:tunnel_id>", views.tunnel_edit, name="edit"),
    path("tunnels/<int:tunnel_id>/delete", views.tunnel_delete, name="delete"),
    path("tunnels/<int:tunnel_id>/keys", views.key_create, name="key_create"),
    path("tunnels/<int:tunnel_id>/keys/<int:key_id>/revoke", views.key_revoke, name="key_revoke"),
    path("tunnels/sessions/<str:session_id>/kill", views.session_kill, name="session_kill"),
]
