"""Reader studies: study model, blinding, durable storage, statistics and reports."""
