"""``python -m registry`` and the ``registry`` command. The garbage collector is off while the server starts: the
objects start-up makes (modules, classes, prepared statements) live as long as the process, and collecting among
them was about a tenth of start-up; ``registry.app.settle_heap`` freezes them and turns it back on once the app has
started."""

import gc


def main() -> None:
    gc.disable()
    from registry.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
