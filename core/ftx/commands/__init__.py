"""Click command modules attached to ``ftx.cli``; none imports torch at load time."""
