"""``python -m ftx``: the ``ftx`` command line, as the console script runs it (the web UI
launches runs this way, with the server's own interpreter)."""

from ftx.cli import main

if __name__ == "__main__":
    main()
