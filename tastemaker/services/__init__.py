"""The gRPC server and thin servicers; the application services per use case (home ranking,
sticker suggestion, feedback); wiring, config, CLI, metrics and the embedded stack."""
