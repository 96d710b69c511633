#!/usr/bin/env bash
# Called by steps/decode*.sh as local/score.sh [options] <data> <graph> <decode-dir>: Kaldi's
# own scoring (steps/score_kaldi.sh), every language-model weight and insertion penalty kept,
# so that stage 4 can choose them on dev and apply them to test.
set -euo pipefail
steps/score_kaldi.sh --min-lmwt 4 --max-lmwt 17 --word-ins-penalty 0.0,0.5,1.0 "$@"
