"""Measuring tools that more than one stage uses, so that stage 5 (evaluate/), the
conversion page (convert/) and the ASR tables (asr/) judge by the same rules.

  classifiers.py   shrinkage LDA and logistic-regression probes fitted on latents or FBank
  significance.py  percentile intervals, paired bootstrap p-values, Holm/Bonferroni
                   correction of a table of comparisons
  figures.py       matplotlib figures written as PNG atomically
"""
