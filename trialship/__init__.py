"""trialship: the desk of a hospital imaging research office that runs clinical trials."""

__version__ = "0.1.0"
