"""The feedback hook: called after commit whenever a user's ratings or hidden movies change.

catalog.services calls user_feedback_changed(user_id) through transaction.on_commit; the
recommendations side decides what to do (fold the user in, refresh their cached list).
"""


def user_feedback_changed(user_id: int) -> None:
    """React to a change in one user's ratings or "not interested" list."""
