"""fhvae.evaluate."""
