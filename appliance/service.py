"""The node as a system service: wait for a site on a fresh appliance, then run.

A new appliance boots with an empty data directory; the setup wizard (web UI) creates
the site in it. `meshprint node` waits for that, polling, and keeps systemd informed
(STATUS= and watchdog pings) so the unit is healthy while it waits.
"""

from __future__ import annotations

import logging
import threading

from appliance.datadir import DataDir
from appliance.sdnotify import Notifier

log = logging.getLogger(__name__)

SITE_POLL = 2.0


def wait_for_site(
    data: DataDir,
    notifier: Notifier,
    stop: threading.Event | None = None,
    poll: float = SITE_POLL,
) -> bool:
    """Return True once `data` holds a node (site created or joined), False if `stop`
    is set first. Logs once; tells systemd it is up and waiting."""
    if data.exists():
        return True
    stop = stop or threading.Event()
    message = f"waiting for a site in {data.root}: open the setup page or run 'meshprint join'"
    log.warning(message)
    # Up and doing its job (waiting): a fresh appliance must still boot to "running".
    notifier.ready(message)
    while not data.exists():
        notifier.watchdog()
        if stop.wait(poll):
            return False
    log.info("site found in %s, starting", data.root)
    return True
