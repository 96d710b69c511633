#!/usr/bin/env bash
# Called by steps/decode*.sh as local/score.sh [options] <data> <graph> <decode-dir>: Kaldi's
# own scoring (steps/score_kaldi.sh), every language-model weight and insertion penalty kept,
# so that stage 4 can choose them on dev and apply them to test. The grammar is a nearly flat
# unigram, so the LM weight acts mostly as a per-word cost: on dev the best weights of noisy
# speech lie above Kaldi's usual 7-17 (first run: 17, the top of that range), hence 5-25.
set -euo pipefail
steps/score_kaldi.sh --min-lmwt 5 --max-lmwt 25 --word-ins-penalty 0.0,0.5,1.0 "$@"
