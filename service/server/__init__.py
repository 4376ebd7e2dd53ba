"""The process that serves the app: the HTTP/1.1 protocol with its header bound, the workers' supervisor."""
