"""Reading settings whose type Flask's ``from_prefixed_env`` cannot know.

Flask reads ``ASSAY_X=value`` as JSON when it parses, else as text: ``true`` and ``0`` become booleans and
numbers, but ``no``, ``off`` or ``False`` stay strings, and a non-empty string is true in Python. An
``ASSAY_AUTH=off`` then turned accounts *on*: safe, but not what was asked. So yes/no settings are read
here, with the usual spellings, and anything else stops the server at start with what to write.
"""
from __future__ import annotations

from .errors import ConfigurationError

TRUE = ("1", "true", "yes", "on", "y", "t")
FALSE = ("0", "false", "no", "off", "n", "f", "")


def flag(config, key: str, default: bool = False) -> bool:
    """The yes/no setting ``key`` (``ASSAY_<key>``) as a bool; ConfigurationError for anything else."""
    value = config.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
        return value.strip().lower() in TRUE
    raise ConfigurationError(f"ASSAY_{key}={value!r} is not a yes/no value: write true or false "
                             "(1/0, yes/no and on/off work too)")
