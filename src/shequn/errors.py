"""Domain errors: a stable machine code, an HTTP status class and message parameters.

The human message is looked up in the i18n catalogs under `error.<code>`.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status = 400

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.params!r})"


class InvalidInput(DomainError):
    status = 422


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    """The request is well-formed but the current state refuses it."""

    status = 409


class Forbidden(DomainError):
    status = 403


class Unauthorized(DomainError):
    status = 401
