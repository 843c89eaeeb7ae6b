"""The feedback hook: called after commit whenever a user's ratings or "not interested" list change.

catalog.services calls user_feedback_changed(user_id) through transaction.on_commit. Here the
user's LightFM vector is re-estimated by fold-in from the current item representations (one
small least-squares solve, milliseconds) and stored for the current model version, so their
next list reflects the change without a refit. (The EASE half of the served blend reads the
user's ratings at request time, so it is always current.)
"""
from django.contrib.auth import get_user_model


def user_feedback_changed(user_id: int) -> None:
    """Fold the user in again and store their new vector (no-op without a published model)."""
    from recommendations.selectors import current_model, load_user_state
    from recommendations.services import store_user_vector

    model = current_model()
    if model is None or model.version_id is None:
        return
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return
    state = load_user_state(user, model, use_stored=False)
    store_user_vector(user_id=user_id, version_id=model.version_id, vector=state.vector)
