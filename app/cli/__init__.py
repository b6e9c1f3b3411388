"""Headless command-line commands behind ``python main.py COMMAND``; one module per command."""
