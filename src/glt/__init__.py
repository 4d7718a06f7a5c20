"""glt: Generalized Long-Tailed classification.

Benchmarks (ImageNet-GLT, MSCOCO-GLT, ColorDigits-GLT, any labelled image folder),
long-tailed methods with Invariant Feature Learning, and the CLT / GLT / ALT protocols.
"""

__version__ = "0.1.0"
