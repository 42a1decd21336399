"""The app supervisor: desired app set in (`apply`), processes kept equal to it, state out.

Imported lazily by guest_init.machine, so a guest_init that never supervises stays small.
"""
