"""The ``seawall`` command line: one module per subcommand group, and the demo."""
