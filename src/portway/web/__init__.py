"""The server-rendered admin UI shell: base layout, dashboard, static assets."""
