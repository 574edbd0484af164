"""UI routes: /proxy-hosts, /redirection-hosts, /dead-hosts, /streams and their forms and
actions.

Every kind's list and actions are the generic ones (site_views); the proxy host's and the
stream's forms are their own (views, stream_views), the other kinds' forms are generic.
URL names: "hosts:list", "hosts:create"... for proxy hosts, "hosts:<kind>_list"... for
the others.
"""

from django.urls import path

from portway.hosts import log_views, site_views, stream_views, views

app_name = "hosts"


def _routes(site: site_views.SiteKindPage) -> list:
    kind, name = site.model.KIND, site.url_prefix
    if kind in site_views.PAGES:
        create = path(
            f"{site.slug}/new", site_views.site_create, {"kind": kind}, name=f"{name}create"
        )
        edit = path(
            f"{site.slug}/<int:host_id>", site_views.site_edit, {"kind": kind}, name=f"{name}edit"
        )
    elif kind == "stream":  # a stream has no names or HTTP options: its own form
        create = path(
            f"{site.slug}/new", stream_views.stream_create, {"kind": kind}, name=f"{name}create"
        )
        edit = path(
            f"{site.slug}/<int:host_id>",
            stream_views.stream_edit,
            {"kind": kind},
            name=f"{name}edit",
        )
    else:  # the proxy host's own form
        create = path(f"{site.slug}/new", views.host_create, name=f"{name}create")
        edit = path(f"{site.slug}/<int:host_id>", views.host_edit, name=f"{name}edit")
    logs = [
        path(
            f"{site.slug}/<int:host_id>/logs",
            log_views.host_logs,
            {"kind": kind},
            name=f"{name}logs",
        )
    ]
    return [
        path(site.slug, site_views.site_list, {"kind": kind}, name=f"{name}list"),
        create,
        edit,
        *(
            path(
                f"{site.slug}/<int:host_id>/{verb}",
                site_views.site_action,
                {"kind": kind, "verb": verb},
                name=f"{name}{verb}",
            )
            for verb in ("enable", "disable", "delete")
        ),
        *(logs if site.logs else []),
    ]


urlpatterns = [route for site in site_views.LISTS.values() for route in _routes(site)]
