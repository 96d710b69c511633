"""Training data for the FHVAE: which segments exist, which are drawn, and how their
features reach the model.

  index.py    the segment index: every training segment as a few numpy arrays (.npz)
  sampler.py  hierarchical sampling (paper, Algorithm 1): sequences, then segments among them
  loader.py   a sequence batch's features in one device buffer, the next read in a thread
"""
