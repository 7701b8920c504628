"""Features (silver -> gold): behaviour, items, sequences, text embeddings."""
