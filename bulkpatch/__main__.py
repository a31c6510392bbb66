"""`python -m bulkpatch` runs the same CLI as the `bulkpatch` command."""

from bulkpatch.cli.app import main

main()
