"""The gunicorn entry point, `gunicorn webui.wsgi:app`: the node's data directory comes
from $MESHPRINT_DATA (/var/lib/meshprint on the appliance)."""

import os

from webui import create_app

app = create_app({"MESHPRINT_DATA": os.environ.get("MESHPRINT_DATA")})
