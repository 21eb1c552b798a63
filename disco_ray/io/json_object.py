"""Parse text that must hold one JSON object, with an error that names where it came from."""

from __future__ import annotations

import json

from disco_ray.outputs import OutputsError


def json_object(text: str | bytes, where: str, fix: str,
                error: type[ValueError] = OutputsError) -> dict:
    """The JSON object in `text`; `error` naming `where` and `fix` if it is not JSON or not an
    object (a dict)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{where}: invalid JSON ({err.msg}). Fix: {fix}") from None
    if not isinstance(value, dict):
        raise error(f"{where}: expected a JSON object, got {type(value).__name__}. Fix: {fix}")
    return value
