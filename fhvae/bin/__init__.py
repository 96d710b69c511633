"""Thin command-line entry points: parse options, call library code, report errors."""
