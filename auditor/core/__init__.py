"""Plain data and contracts at the bottom of the auditor: the model, grades, the rule contract, errors.

Nothing here imports any other part of the project (an import-linter contract in pyproject.toml).
"""
