"""UI routes: /certificates, upload, Let's Encrypt requests with live progress, delete."""

from django.urls import path

from portway.certificates import views

app_name = "certificates"

urlpatterns = [
    path("certificates", views.certificate_list, name="list"),
    path("certificates/new", views.certificate_create, name="create"),
    path("certificates/<int:cert_id>/delete", views.certificate_delete, name="delete"),
    path("certificates/letsencrypt/new", views.certificate_request, name="request"),
    path("certificates/dns-template", views.dns_template, name="dns-template"),
    path("certificates/<int:cert_id>", views.certificate_detail, name="detail"),
    path("certificates/<int:cert_id>/progress", views.certificate_progress, name="progress"),
    path("certificates/<int:cert_id>/renew", views.certificate_renew, name="renew"),
    path("certificates/<int:cert_id>/download", views.certificate_download, name="download"),
]
