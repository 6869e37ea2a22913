"""A small error hierarchy: messages are written for users and name the bad column or value.

Pages catch only `CoreError` and show it with `st.error`; the CLI prints it on one line and exits 2.
Anything else is a real bug and stays a traceback that tests see.
"""


class CoreError(Exception):
    """Base of every error Vigil reports to a user."""


class DataError(CoreError):
    """The user's data cannot be used as it is (bad file, missing column, wrong type)."""


class ConfigError(CoreError):
    """A parameter or setting is out of its declared range."""


class WorkspaceError(CoreError):
    """The workspace file cannot be opened or written (locked by another process, read-only)."""
