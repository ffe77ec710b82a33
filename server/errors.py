"""Small exception classes that carry an HTTP status and a message a user can act on."""
from __future__ import annotations


class AssayError(Exception):
    status = 400

    def __init__(self, message: str, *, status: int | None = None, details=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.details = details

    def to_dict(self) -> dict:
        body = {"error": self.message, "status": self.status}
        if self.details is not None:
            body["details"] = self.details
        return body


class BadRequest(AssayError):
    status = 400


class Unauthorized(AssayError):
    status = 401


class Forbidden(AssayError):
    status = 403


class NotFound(AssayError):
    status = 404


class Conflict(AssayError):
    status = 409


class MisdirectedRequest(AssayError):
    status = 421


class PayloadTooLarge(AssayError):
    status = 413


class UnsupportedMediaType(AssayError):
    status = 415


class TooManyRequests(AssayError):
    status = 429


class ConfigurationError(Exception):
    """A setting the server cannot start with; the message says what to set instead."""
