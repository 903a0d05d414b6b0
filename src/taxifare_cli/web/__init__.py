"""The web face of taxifare: the model as an HTTP API (optional extra `serve`)."""
