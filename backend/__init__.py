"""A sample API behind the gateway that trusts only the identity headers Nginx sets."""
