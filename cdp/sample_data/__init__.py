"""Synthetic customer data for the demo, the tests and the benchmarks.

``generate`` fills the public ``raw`` tables (README, "The data contract") with a
messy, multi-source customer base, and ``ground_truth`` with who is who, so identity
resolution, attributes and segments can be checked against the truth.
"""

from cdp.sample_data.config import GeneratorConfig, NoiseConfig
from cdp.sample_data.generator import GenerationSummary, generate

__all__ = ["GenerationSummary", "GeneratorConfig", "NoiseConfig", "generate"]
