import sys

from backend.cli import main

if __name__ == "__main__":      # not in the worker processes `upnext tune` spawns (they import this module)
    sys.exit(main())
