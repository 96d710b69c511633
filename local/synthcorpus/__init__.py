"""The built-in synthesised multi-speaker corpus (espeak-ng speech, noise, channels)."""
