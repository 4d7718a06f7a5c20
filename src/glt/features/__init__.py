"""Frozen features: a backbone run once over a benchmark's splits, stored as float16 memory maps."""

from glt.features.store import FeatureStore

__all__ = ["FeatureStore", "extract_features"]


def __getattr__(name):
    # the writer imports torch and the model zoo; reading a store needs numpy only
    if name == "extract_features":
        from glt.features.extract import extract_features

        return extract_features
    raise AttributeError(name)
