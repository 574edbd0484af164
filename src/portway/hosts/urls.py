"""UI routes: /proxy-hosts, /redirection-hosts, /dead-hosts, /streams and their forms and
actions."""

from django.urls import path

from portway.hosts import site_views, stream_views, views

# a kind whose form is its own (a stream has no names): (create view, edit view)
FORM_VIEWS = {"stream": (stream_views.stream_create, stream_views.stream_edit)}
GENERIC_FORM_VIEWS = (site_views.site_create, site_views.site_edit)

app_name = "hosts"

urlpatterns = [
    path("proxy-hosts", views.host_list, name="list"),
    path("proxy-hosts/new", views.host_create, name="create"),
    path("proxy-hosts/<int:host_id>", views.host_edit, name="edit"),
    path("proxy-hosts/<int:host_id>/enable", views.host_enable, name="enable"),
    path("proxy-hosts/<int:host_id>/disable", views.host_disable, name="disable"),
    path("proxy-hosts/<int:host_id>/delete", views.host_delete, name="delete"),
] + [
    route
    for kind, site in site_views.PAGES.items()
    for route in (
        path(site.slug, site_views.site_list, {"kind": kind}, name=f"{kind}_list"),
        path(
            f"{site.slug}/new",
            FORM_VIEWS.get(kind, GENERIC_FORM_VIEWS)[0],
            {"kind": kind},
            name=f"{kind}_create",
        ),
        path(
            f"{site.slug}/<int:host_id>",
            FORM_VIEWS.get(kind, GENERIC_FORM_VIEWS)[1],
            {"kind": kind},
            name=f"{kind}_edit",
        ),
        *(
            path(
                f"{site.slug}/<int:host_id>/{verb}",
                site_views.site_action,
                {"kind": kind, "verb": verb},
                name=f"{kind}_{verb}",
            )
            for verb in ("enable", "disable", "delete")
        ),
    )
]
