"""The one rule for "is this the instance's own id": an X-Gitlab-Instance-Id (or a seat link's `instance_id`) names
the bound instance when it is the same UUID, whatever its case or spelling; text that is not a UUID names no
instance of ours (a mismatch, never an exception)."""

import uuid


def instance_id_matches(claimed: str, identifier: uuid.UUID | str) -> bool:
    if claimed == str(identifier):  # what GitLab sends: no parsing on the sync's hot path
        return True
    try:
        return uuid.UUID(str(claimed).strip()) == uuid.UUID(str(identifier))
    except (ValueError, TypeError, AttributeError):
        return False
