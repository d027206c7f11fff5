"""tastebud.web: the homepage website (``tastebud web``), a client of the tastebud.v1 gRPC API."""
