"""The error vocabulary shared by every layer.

The core raises these with messages that state the contract; the gRPC edge maps each class to
one status code (``server/errors.py``) and the CLI to one exit code. Anything else is a bug.
"""

from __future__ import annotations


class TastebudError(Exception):
    """Base class of every error tastebud raises on purpose."""


class InvalidInputError(TastebudError, ValueError):
    """Input breaks its contract: a bad file, row, field or request value.

    Messages name the file and line, or the request field, so the caller can fix it.
    """


class NotFoundError(TastebudError, LookupError):
    """A named thing (item, user, index) does not exist."""


class PreconditionError(TastebudError):
    """The system is not in a state to do this: no published index, a mismatched model..."""


class IndexIntegrityError(PreconditionError):
    """An index directory on disk is corrupt or does not match what loads it."""


class UnavailableError(TastebudError):
    """Temporarily unable to serve (still loading, shutting down); the caller may retry."""


class ModelValidationError(TastebudError):
    """A trained model did worse than the popularity baseline on validation: not published."""
