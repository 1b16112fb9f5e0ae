"""The session that lasts between starts, and travels as one file (see ``ui.session.controller``)."""

from ui.session.controller import Decision, Session

__all__ = ["Decision", "Session"]
