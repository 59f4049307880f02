"""gclvad: unsupervised video anomaly detection with Generative Cooperative Learning."""

__version__ = "0.1.0"
