"""Small helpers for every package: atomic writes, the seismic error, the machine's description and policies, figures. Imports nothing of salt_tf."""
