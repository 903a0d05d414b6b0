"""The cloud job agent: the face that runs a training job on the machine that trains."""
