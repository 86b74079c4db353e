"""Console pages are registered by each app's own admin module; this app brands the site."""
