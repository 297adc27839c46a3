"""learnhours: nightly learning-hours compliance for the HR offices of Taiwan's government agencies."""

__version__ = "0.1.0"
