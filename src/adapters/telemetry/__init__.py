"""What operators see: the request's facts for its log line, Prometheus metrics."""
