"""Renderers: Markdown review, JSON, SARIF and GitHub annotations, from an audit result."""
