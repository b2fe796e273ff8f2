"""Errors of the magacq application; the CLI prints each as one line with its exit code."""


class MagacqError(Exception):
    """Base of magacq's errors. ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class ConfigError(MagacqError, ValueError):
    """The configuration (file, key, value) or a command-line argument is wrong: exit code 2."""

    exit_code = 2


class RunError(MagacqError, RuntimeError):
    """The acquisition failed while running (camera, producer, writer): exit code 1."""

    exit_code = 1
