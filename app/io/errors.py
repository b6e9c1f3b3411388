"""The one error type the loaders raise: its message is written for the person who chose the file."""

from app.core.messages import MESSAGE_CHARS, one_line


class LoadError(Exception):
    """A path could not be read as an image volume; ``str(error)`` says which file and why.

    The message is one printable line (decoder texts can carry raw bytes of a hostile file).
    """

    def __init__(self, message: object = "") -> None:
        super().__init__(one_line(message, MESSAGE_CHARS))
