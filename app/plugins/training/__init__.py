"""Training utilities for the shipped plugins (Qt-free): template data, degradations, loops.

Imported only by the training scripts and the shipped-plugin tests, never at app start-up.
"""
