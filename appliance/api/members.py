"""`GET /v1/members` on the submit and release APIs: this node's newest signed member
list, for anyone. A user's client checks against it (and against what other members and
its own cache say) that the node answering is a current member before it sends a
password or submit token. It holds node ids, certificate serials, addresses and
revocations only: the users' wrapped keys stay among the members."""

from __future__ import annotations

from collections.abc import Callable

from appliance.errors import Unavailable
from appliance.https.server import Request, Response, Router, json_response
from appliance.site.directory import Directory


def add_route(router: Router, directory: Callable[[], Directory]) -> None:
    """Serve `GET /v1/members` on `router` from the node's newest `directory()`."""

    @router.route("GET", "/v1/members")
    def members(request: Request) -> Response:
        found = directory().membership()
        if found is None:
            raise Unavailable(
                "this node's directory version has no signed member list yet; "
                "the controller's next change to the site adds one"
            )
        return json_response(found.signed())
