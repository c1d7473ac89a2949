"""Pretrained weights: a registry of downloadable artefacts, a verified on-disk cache, downloads.

`resolve.resolve_model_path()` is the one place a model name becomes a file; see docs/models.md.
Nothing here imports requests, TensorFlow or Keras at import time, and this package imports none of
its modules itself: `varec cache dir` needs the cache module alone, not the downloader.
"""
