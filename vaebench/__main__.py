import sys

from vaebench.cli import main

if __name__ == "__main__":  # python -m vaebench
    sys.exit(main())
