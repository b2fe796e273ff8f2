"""`python -m magacq`: the same command line as the `magacq` script."""

from magacq.cli import main

if __name__ == "__main__":  # not in a spawned child, which imports this module as __mp_main__
    main()
