"""Benchmark settings: the real settings plus two baseline views (bench/urls.py). Never used in production."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
