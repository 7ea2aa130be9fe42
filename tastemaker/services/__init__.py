"""The gRPC server, thin servicers, the application services per use case, wiring, config,
CLI and the embedded stack."""
