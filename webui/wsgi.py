"""The gunicorn entry point: `gunicorn webui.wsgi:app` (data directory from MESHPRINT_DATA)."""

from webui import create_app

app = create_app()
