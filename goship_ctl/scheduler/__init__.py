"""Placement of projects on nodes: pure functions over plain data, no database.

``schedule`` takes every project (with its current placement) and every node and returns where
each project's VMs go, or why some could not be placed. See docs/control-service.md.
"""
