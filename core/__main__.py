import sys

from core.cli import main

if __name__ == "__main__":  # Dask's worker processes import this module without running it
    sys.exit(main())
