"""fhvae-kaldi: scalable FHVAE training (hierarchical sampling) with Kaldi-style I/O."""

__version__ = "0.1.0"
