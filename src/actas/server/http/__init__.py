"""Cross-cutting HTTP concerns: the error envelope, body limits, origins, cookies."""
