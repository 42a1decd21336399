"""One module per ``goship-ctl`` top-level command (see ``goship_ctl.cli``)."""
