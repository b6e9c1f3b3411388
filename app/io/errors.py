"""The one error type the loaders raise: its message is written for the person who chose the file."""


class LoadError(Exception):
    """A path could not be read as an image volume; ``str(error)`` says which file and why."""
