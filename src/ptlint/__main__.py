"""`python -m ptlint`."""

from ptlint.cli import main

if __name__ == "__main__":
    main()
