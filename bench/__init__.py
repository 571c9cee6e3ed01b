"""`make bench`: what JWT validation at the edge costs, measured against Nginx alone."""
