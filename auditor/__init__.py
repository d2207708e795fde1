"""Parameter Golf compliance auditor.

Data flows one way: folder -> Submission (loader) -> rules -> findings -> verdict -> report.
"""

__version__ = "0.1.0"
