"""GoShip control service and the ``goship-ctl`` command line."""

__version__ = "0.1.0"
