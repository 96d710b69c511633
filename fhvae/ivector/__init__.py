"""i-vector baseline of stage 5 (Kaldi's sid recipe semantics, written for this project).

Public API: IvectorConfig, train_ivector_system, extract_ivectors, IvectorSystem (.save /
.load); the pieces live in features, ubm, stats, extractor and em; training (streamed,
resumable) in training and resume; reading a data dir in reader.
"""

from fhvae.ivector.features import FrontEndConfig
from fhvae.ivector.system import IvectorConfig, IvectorSystem, extract_ivectors
from fhvae.ivector.training import train_ivector_system

__all__ = ["FrontEndConfig", "IvectorConfig", "IvectorSystem", "extract_ivectors",
           "train_ivector_system"]
