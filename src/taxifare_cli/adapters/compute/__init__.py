"""Where cloud training jobs run: this machine, a Compute Engine VM, Vertex AI (ports.TrainingRunner)."""
