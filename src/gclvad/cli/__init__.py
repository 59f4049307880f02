"""The `gclvad` command.

    main   the subcommands and `main(argv)`, which tests call in-process
    watch  `gclvad watch` and `gclvad calibrate`

This package file imports nothing.
"""
