"""`python -m ptlint.server`: the same as `ptlint server`."""

from ptlint.server import main

main()
