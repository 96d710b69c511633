"""fhvae.io."""
