"""The web desk: server-rendered pages (FastAPI, Jinja2) for the people who
work the cases' human steps. ``collections desk`` serves
:func:`desk.web.app.create_app`."""
