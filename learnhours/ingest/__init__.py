"""Ingest, wired from above: read a file (extractors) -> normalize its rows (transforms) -> store
them (warehouse), one file in one transaction.

load_file (the entry: ingest_file, FileReport), rows (a file's rows shaped for the normalizer,
rows wider than their header), chunks (normalized rows in chunks with their source lines),
columns (a CSV file's well-formed bulk read as columns, the rest the row path's way: the same
chunks), parser_process (the same chunks made in a second process for large files), roster.
"""

from learnhours.ingest.load_file import FileReport, file_sha256, ingest_file

__all__ = ["FileReport", "file_sha256", "ingest_file"]
