"""varec: video activity recognition (a CNN per frame, an RNN over time)."""

__version__ = "0.1.0"
