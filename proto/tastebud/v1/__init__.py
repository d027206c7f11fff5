"""Generated gRPC code for tastebud.v1; regenerate with `make proto`."""
