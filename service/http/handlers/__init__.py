"""Request → compute → response: a validated request made ready for compute, and its answer built (never a route)."""
