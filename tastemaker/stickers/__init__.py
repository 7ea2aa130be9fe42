"""Message-to-sticker retrieval: the catalog, the multilingual encoder and the ANN index."""
