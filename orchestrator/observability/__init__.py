"""What the orchestrator shows about itself: secret masking, log capture format, metrics."""
