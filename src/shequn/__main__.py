from shequn.entrypoints.cli import main

main()
