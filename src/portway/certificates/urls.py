"""UI routes: /certificates, upload and delete."""

from django.urls import path

from portway.certificates import views

app_name = "certificates"

urlpatterns = [
    path("certificates", views.certificate_list, name="list"),
    path("certificates/new", views.certificate_create, name="create"),
    path("certificates/<int:cert_id>/delete", views.certificate_delete, name="delete"),
]
