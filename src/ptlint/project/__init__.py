"""The project model: facts that cross file boundaries (see index.py and summary.py)."""

from ptlint.project.index import ProjectIndex, ProjectView, find_root, still_valid
from ptlint.project.summary import FileSummary, summarize

__all__ = ["ProjectIndex", "ProjectView", "FileSummary", "find_root", "still_valid", "summarize"]
