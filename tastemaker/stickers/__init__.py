"""Message-to-sticker retrieval's parts: the catalog, text features, the served encoder and the ANN
index (the suggestion service that composes them is `services.stickers`)."""
