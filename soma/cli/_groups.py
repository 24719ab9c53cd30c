"""Imports every command module so it registers its commands on ``soma.cli.app``.

One line per module; keep heavy imports inside the command functions.
"""
