"""`python -m magacq`, and the `magacq` script: the command line of :mod:`magacq.cli`.

The script's module is this small one because a child process started by ``spawn`` (Windows,
macOS) runs the parent's main script again, as ``__mp_main__``: importing the command line there
(typer, rich, every command's options) cost each child of a run about 0.3 s of start-up.
"""


def main() -> None:
    """Console-script entry point."""
    from magacq.cli import main as cli_main

    cli_main()


if __name__ == "__main__":  # not in a spawned child, which imports this module as __mp_main__
    main()
