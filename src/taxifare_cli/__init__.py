"""taxifare: the whole life of the WagonCab taxi-fare model from one command line."""

import os
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("taxifare")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

# TensorFlow prints a screenful at import unless both are set.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
