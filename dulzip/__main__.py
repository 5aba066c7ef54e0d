"""``python -m dulzip``: the command line, as the ``dulzip`` script."""
from dulzip.cli import entry

if __name__ == "__main__":
    entry()
