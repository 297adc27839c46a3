"""learnhours: nightly learning-hours compliance for the HR offices of Taiwan's government agencies."""

from learnhours.allocator import settle

settle()  # before any of the package's modules loads Polars or starts a thread

__version__ = "0.1.0"
