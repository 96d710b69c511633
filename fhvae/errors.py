"""One exception type for every user-facing failure.

Library code raises FhvaeError with a single line that names the file and the
line/utterance at fault; the CLI wrappers turn it into `ERROR: ...` on stderr and
exit status 1 instead of a traceback.
"""


class FhvaeError(Exception):
    """A problem with the user's input or environment, described in one line."""
