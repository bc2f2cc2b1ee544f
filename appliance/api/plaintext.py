"""A decrypted document as a streamed HTTP response (release and peer APIs)."""

from __future__ import annotations

from appliance.https.server import Response
from appliance.jobs.release import Plaintext


def stream_plaintext(plaintext: Plaintext, finish: bool = False) -> Response:
    """The releasing side deletes the job once it was sent (`finish`), not a holder that
    only decrypted for it."""
    return Response(
        200,
        plaintext.chunks,
        "application/octet-stream",
        length=plaintext.size,
        on_complete=plaintext.finish if finish else None,
    )
