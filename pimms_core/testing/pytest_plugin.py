"""The pimms pytest plugin (entry point `pytest11`): fixtures for plugin authors.

Loaded automatically by pytest wherever pimms-core is installed.
"""
