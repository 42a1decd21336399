"""The one exception a build reports to the user."""


class BuildError(Exception):
    """A build failed for a reason the user can act on; ``str()`` is one line."""

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))
