"""The base of every error a person can act on: the CLI prints its message (no traceback) and exits 1."""


class UpnextError(Exception):
    """Bad input or a state the user can fix; the message says how."""
