"""UI routes: /proxy-hosts, /redirection-hosts, /dead-hosts and their forms and actions."""

from django.urls import path

from portway.hosts import log_views, site_views, views

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
        path(f"{site.slug}/new", site_views.site_create, {"kind": kind}, name=f"{kind}_create"),
        path(
            f"{site.slug}/<int:host_id>",
            site_views.site_edit,
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
urlpatterns += [
    path(f"{slug}/<int:host_id>/logs", log_views.host_logs, {"kind": kind}, name=f"{kind}_logs")
    for kind, slug in (
        ("proxy", "proxy-hosts"),
        ("redirection", "redirection-hosts"),
        ("dead", "dead-hosts"),
    )
]
