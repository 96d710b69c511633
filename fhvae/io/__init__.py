"""Kaldi files in and out: data dirs, their tables and features, audio, option files.

  datadir.py         DataDir: a data dir's file names (the one place), its tables and
                     features read, a new dir's files written (C-sorted, atomically)
  text_table.py      the reader and writer of `<key> <value>` text tables (line by line,
                     or vectorised for million-line tables)
  tables.py          ark/scp tables of matrices: read through kaldiio, written atomically
  rxfile.py          Kaldi rxfile syntax (ark:offset, ranges, pipes) and one matrix read
  atomic.py          write-then-rename, so no reader sees a half-written file
  labels.py          frame labels from a phone CTM, and the no-label marker
  subset.py          a data dir restricted to some utterances (subset_data_dir.sh)
  split.py           a data dir or table in balanced parts (split_data.sh, split_scp.pl)
  combine.py         data dirs combined into one (combine_data.sh)
  validate.py        the rules of a valid data dir checked (validate_data_dir.sh), and fixed
  datadir_writer.py  a corpus's utterance records written as a data dir
  feature_dir.py     a data dir whose features are a given scp (the latents' data dirs)
  audio.py           wav.scp and segments read as samples
  kaldi_config.py    Kaldi option files (`--name=value`)
"""
