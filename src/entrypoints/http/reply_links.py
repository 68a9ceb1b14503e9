"""Where a streamed reply is followed and stopped, in each dialect."""

from __future__ import annotations


def reply_links(prefix: str, reply_id: int) -> dict[str, str]:
    """``prefix``: the dialect's (``/api`` or ``/api/v1``)."""
    return {
        "stream_url": f"{prefix}/messages/{reply_id}/stream/",
        "cancel_url": f"{prefix}/messages/{reply_id}/cancel/",
    }
